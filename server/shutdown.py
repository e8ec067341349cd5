"""A process's bounded stop (issue 13): the grace period, then interruption.

:meth:`Shutdown.begin` (SIGTERM/SIGINT, or the end of the app's lifespan) starts the grace
period: new work is no longer started, work in hand may finish. When the period ends,
:attr:`Shutdown.interrupted` is set and long work (an import at its next batch, a pull at its
next page or back-off wait) raises :class:`~server.errors.Interrupted` from :meth:`check`: it
rolls back and is recorded as interrupted, so operators see what was aborted.

Example::

    shutdown = Shutdown(grace=30)
    shutdown.watch_signals()              # SIGTERM/SIGINT begin the grace period
    for batch in batches:
        shutdown.check()                  # raises Interrupted once the period is over
        write(batch)
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from server.errors import Interrupted


class Shutdown:
    """The stop of one process: ``begin()`` once, then ``grace`` seconds, then interrupt."""

    def __init__(self, grace: float, reason: str = "a server shutdown") -> None:
        self.grace = max(float(grace), 0.0)
        self.reason = reason
        self._stopping = threading.Event()
        self._interrupted = threading.Event()
        self._callbacks: list[Callable[[], None]] = []

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def interrupted(self) -> bool:
        return self._interrupted.is_set()

    def on_begin(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the stop begins (a worker stops taking jobs)."""
        self._callbacks.append(callback)

    def begin(self, reason: str | None = None) -> None:
        """Start the grace period (once; later calls change nothing). Safe in a signal handler."""
        if self._stopping.is_set():
            return
        if reason:
            self.reason = reason
        self._stopping.set()
        for callback in self._callbacks:
            callback()
        if self.grace <= 0:
            self._interrupted.set()
            return
        timer = threading.Timer(self.grace, self._interrupted.set)
        timer.daemon = True
        timer.start()

    def interrupt_now(self) -> None:
        """End the grace period early (a second SIGTERM or Ctrl-C)."""
        self._interrupted.set()
        self.begin()

    def check(self, done: int = 0) -> None:
        """Raise :class:`Interrupted` once the grace period is over (a ``progress`` callback).

        :raises Interrupted:
        """
        if self._interrupted.is_set():
            raise Interrupted(self.reason)

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, waking at once if the work must stop (a retry's back-off).

        :raises Interrupted:
        """
        self._interrupted.wait(seconds)
        self.check()

    def wait_interrupted(self, timeout: float | None = None) -> bool:
        return self._interrupted.wait(timeout)

    def watch_signals(self, chain: bool = True) -> None:
        """Begin on SIGTERM/SIGINT (a second one interrupts at once), then pass the signal on to
        the handler installed before (uvicorn's, which stops serving) unless not ``chain``
        (``rollcall worker``: Python's own would raise KeyboardInterrupt mid-job). Only from
        the main thread (Python's rule)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for number in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(number)

            def handler(sig: int, frame: FrameType | None, previous: Any = previous) -> None:
                if self.stopping:  # asked again: the operator wants it gone now
                    self.interrupt_now()
                self.begin(f"a server shutdown ({signal.Signals(sig).name})")
                if chain and callable(previous):
                    previous(sig, frame)

            signal.signal(number, handler)
