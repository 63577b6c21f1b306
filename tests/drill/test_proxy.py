"""The drill's TCP proxy against a real echo server: forwarding, reset, blackhole, latency."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from cdc.drill.proxy import TcpProxy


@pytest.fixture
def echo_server():
    server = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[:2]
    server.close()


def _echo(conn: socket.socket) -> None:
    with conn:
        try:
            while data := conn.recv(4096):
                conn.sendall(data)
        except ConnectionResetError:
            pass  # what the reset test does to it


@pytest.fixture
def proxy(echo_server):
    proxy = TcpProxy(echo_server)
    yield proxy
    proxy.close()


def _client(proxy: TcpProxy) -> socket.socket:
    sock = socket.create_connection((proxy.host, proxy.port), timeout=5)
    sock.sendall(b"ping")
    assert sock.recv(4) == b"ping"
    return sock


def test_forwards_both_ways(proxy):
    with _client(proxy):
        assert proxy.connections() == 1


def test_reset_breaks_open_connections_with_a_reset(proxy):
    sock = _client(proxy)
    assert proxy.reset() == 1
    with pytest.raises(ConnectionResetError):
        sock.recv(1)
    with _client(proxy):  # new connections work again
        pass


def test_blackhole_holds_bytes_then_delivers_them(proxy):
    sock = _client(proxy)
    threading.Thread(target=proxy.blackhole, args=(1.0,), daemon=True).start()
    time.sleep(0.1)
    started = time.monotonic()
    sock.sendall(b"late")
    assert sock.recv(4) == b"late"
    assert time.monotonic() - started >= 0.8
    sock.close()


def test_latency_delays_every_chunk(proxy):
    sock = _client(proxy)
    proxy.latency = 0.2
    started = time.monotonic()
    sock.sendall(b"slow")
    assert sock.recv(4) == b"slow"
    assert time.monotonic() - started >= 0.4  # once each way
    sock.close()
