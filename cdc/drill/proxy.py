"""A loopback TCP proxy the drill puts between cdc and a database: reset connections, blackhole, latency."""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time

log = logging.getLogger("cdc.drill")

CHUNK = 65536


class TcpProxy:
    """Forwards 127.0.0.1:port to an upstream host:port, one pair of pump threads per connection.

    `reset()` closes every open connection with a TCP reset; `blackhole(seconds)` stops moving bytes
    (both ways, new connections wait too) for that long, as a network that drops packets which TCP
    then retransmits; `latency` (seconds) delays every forwarded chunk.
    """

    def __init__(self, upstream: tuple[str, int], *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.upstream = upstream
        self.latency = 0.0
        self._flowing = threading.Event()
        self._flowing.set()
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._resetting: set[socket.socket] = set()  # their pumps must not end them with a FIN first
        self._listener = socket.create_server((host, port))
        self.host, self.port = self._listener.getsockname()[:2]
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name=f"proxy:{self.port}", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        """`host:port` clients connect to."""
        return f"{self.host}:{self.port}"

    def connections(self) -> int:
        """How many client connections are open now."""
        with self._lock:
            return len(self._pairs)

    def reset(self) -> int:
        """Close every open connection with a TCP reset (SO_LINGER 0); how many were reset."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
            self._resetting.update(sock for pair in pairs for sock in pair)
        for pair in pairs:
            for sock in pair:
                _close_with_reset(sock)
        with self._lock:
            self._resetting.difference_update(sock for pair in pairs for sock in pair)
        log.debug("proxy %s: reset %d connection(s)", self.address, len(pairs))
        return len(pairs)

    def blackhole(self, seconds: float) -> None:
        """Move no byte for `seconds` (blocks that long), then let everything through again."""
        self._flowing.clear()
        try:
            time.sleep(seconds)
        finally:
            self._flowing.set()

    def close(self) -> None:
        """Stop listening and close every connection."""
        self._closed = True
        self._flowing.set()
        self._listener.close()
        self.reset()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        self._flowing.wait()
        try:
            server = socket.create_connection(self.upstream, timeout=10)
            server.settimeout(None)
        except OSError as exc:
            log.debug("proxy %s: upstream %s refused: %s", self.address, self.upstream, exc)
            _close_with_reset(client)
            return
        for sock in (client, server):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._pairs.append((client, server))
        threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
        threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        """Copy bytes one way until either side closes; then close both."""
        try:
            while True:
                data = source.recv(CHUNK)
                if not data:
                    break
                self._flowing.wait()
                if self.latency:
                    time.sleep(self.latency)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._forget(source, sink)

    def _forget(self, a: socket.socket, b: socket.socket) -> None:
        with self._lock:
            self._pairs = [pair for pair in self._pairs if a not in pair]
            resetting = a in self._resetting or b in self._resetting
        if resetting:
            return  # reset() closes them with a reset
        for sock in (a, b):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


def _close_with_reset(sock: socket.socket) -> None:
    """Close so the peer sees a reset, not an orderly end of stream."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD)  # wakes the pump blocked in recv() without sending a FIN
    except OSError:
        pass
    sock.close()
