"""Interrupts for jobs that commit in whole units: SIGINT/SIGTERM stop the job at once, except while a unit
(a backfill day) is being committed; then the stop waits for the commit to finish, so a day is all or nothing."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stop(KeyboardInterrupt):
    """The job was asked to stop by `signum` (SIGINT or SIGTERM)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Interrupts:
    """Turns SIGINT/SIGTERM into Stop, deferred while inside `atomic()`; installed by `installed()`."""

    def __init__(self) -> None:
        self.depth = 0
        self.pending: int | None = None

    def handle(self, signum: int, _frame) -> None:
        """Signal handler: stop now, or after the current atomic block; a second signal while one waits stops
        at once (the block then rolls back: all or nothing still holds)."""
        if self.depth and self.pending is None:
            self.pending = signum
            return
        self.pending = None
        raise Stop(signum)

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """A block a signal must not cut in half: the stop is raised when it ends."""
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
            if not self.depth and self.pending is not None:
                signum, self.pending = self.pending, None
                raise Stop(signum)

    @contextmanager
    def installed(self) -> Iterator[Interrupts]:
        """Install the handlers for the duration of the block (only possible on the main thread)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {sig: signal.signal(sig, self.handle) for sig in SIGNALS}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class NoInterrupts:
    """The `atomic()` of a caller that installed no handlers: a plain block."""

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """No deferral."""
        yield


def exit_status(error: BaseException) -> int:
    """128 + the signal number of a stop (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + getattr(error, "signum", signal.SIGINT)


def stop_on_signals(stop: Callable[[], None]) -> None:
    """In a running event loop, SIGINT/SIGTERM call `stop` (a clean stop: flush, checkpoint) instead of killing the
    job mid-write; a loop that cannot take signal handlers (not the main thread) keeps the default."""
    import asyncio  # here: a backfill, which has no event loop, need not import it

    loop = asyncio.get_running_loop()
    for sig in SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop)


async def aclose(iterator: object) -> None:
    """Close an async generator, ignoring one that is already closed."""
    close = getattr(iterator, "aclose", None)
    if close is not None:
        with contextlib.suppress(RuntimeError, StopAsyncIteration):
            await close()
