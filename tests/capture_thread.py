"""Test helper: a connector's `run_capture` in a thread, for end-to-end tests that need no subprocess."""

from __future__ import annotations

import threading

from cdc.pipeline import CaptureOptions, StopSignal
from cdc.registry import connector_module


class Capture:
    """A connector's run_capture in a thread until stop()."""

    def __init__(self, engine: str, options: CaptureOptions) -> None:
        self.stop_signal = StopSignal(signals=())
        self.error: BaseException | None = None
        run = connector_module(engine, "source").run_capture
        self.thread = threading.Thread(target=self._run, args=(run, options), daemon=True)
        self.thread.start()

    def _run(self, run, options: CaptureOptions) -> None:
        try:
            run(options, self.stop_signal)
        except BaseException as exc:  # noqa: BLE001 - raised by stop()
            self.error = exc

    def stop(self) -> None:
        self.stop_signal.request()
        self.thread.join(60)
        assert not self.thread.is_alive(), "capture did not stop"
        if self.error:
            raise self.error
