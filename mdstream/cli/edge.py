"""The one error edge of the command line: every failure becomes one line on standard error and an exit
status (1 error, 3 finished with data gaps, 130 interrupted); a traceback only with MDSTREAM_DEBUG=1."""

from __future__ import annotations

import functools
import os
import sys

import click

from ..contract.errors import MdstreamError

DEBUG_ENV = "MDSTREAM_DEBUG"
# Set by the `mdstream` program (cli.entry): the process is the command's own, not a caller's (a test runner).
PROCESS = {"own": False}


class OneLine(click.ClickException):
    """A ClickException with its own exit status."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it on the class; an instance may differ


def translate(error: BaseException) -> OneLine:
    """The one-line message and exit status of an error raised by a command."""
    if isinstance(error, MdstreamError):
        return OneLine(str(error), getattr(error, "exit_code", 1))
    if isinstance(error, KeyboardInterrupt):
        return OneLine("interrupted", 130)
    from ..sinks.failures import describe

    if isinstance(error, OSError):
        where = f" ({error.filename})" if getattr(error, "filename", None) else ""
        return OneLine(describe(error, f"file operation{where}"))
    return OneLine(f"internal error: {type(error).__name__}: {describe(error, 'command').removeprefix('command failed: ')} "
                   f"(set {DEBUG_ENV}=1 for the traceback)")


def guarded(func):
    """Decorator: run a command, turning any error but click's own into a OneLine (re-raised as is with MDSTREAM_DEBUG)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except (Exception, KeyboardInterrupt) as error:  # noqa: BLE001 - the edge names every failure in one line
            if os.environ.get(DEBUG_ENV) and not isinstance(error, (MdstreamError, KeyboardInterrupt)):
                raise
            raise translate(error) from error

    return wrapper


class Main(click.Group):
    """Group whose commands fail in one line (see `guarded`), however they were registered."""

    def invoke(self, ctx):
        """Run the command; errors -> one line and their exit status."""
        return guarded(super().invoke)(ctx)


def end_process() -> None:
    """After a command finished and closed everything it wrote: when the process is the command's own, end it at
    once, exit status 0, without the interpreter's teardown (freeing every frame and module the OS reclaims
    anyway: ~0.05 s of the ~0.1 s a day's backfill took to exit); otherwise return."""
    if not PROCESS["own"]:
        return
    status = 0
    logging = sys.modules.get("logging")  # its handlers flushed and closed, if anything logged at all
    if logging is not None:
        logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            status = 120  # what the interpreter reports when its output cannot be flushed at exit
    os._exit(status)
