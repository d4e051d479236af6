"""Every error mdstream raises; the CLI turns them into clean messages at the edge."""

from __future__ import annotations


class MdstreamError(Exception):
    """Base of every mdstream error; `exit_code` is the process exit status the command line gives it."""

    exit_code = 1


class ConfigError(MdstreamError):
    """An option or setting is invalid."""


class InputError(MdstreamError):
    """An input file cannot be read at all (missing, wrong header, unreadable)."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None, field: str | None = None):
        self.path, self.line, self.field = path, line, field
        where = ":".join(str(part) for part in (path, line) if part is not None)
        prefix = f"{where}: " if where else ""
        suffix = f" (field {field!r})" if field else ""
        super().__init__(f"{prefix}{message}{suffix}")


class DownloadError(MdstreamError):
    """A dataset download failed."""


class SourceError(MdstreamError):
    """A live source failed in a way reconnecting cannot fix."""


class SinkError(MdstreamError):
    """A sink failed to write."""

    def __init__(self, message: str, *, retry_after: float | None = None):
        self.retry_after = retry_after
        super().__init__(message)


class SinkUnavailable(SinkError):
    """A sink is temporarily unreachable or throttling; retry after `retry_after` seconds."""


class SpoolFull(SinkError):
    """The on-disk spool reached its byte cap while the sink stayed unavailable."""


class FeatureStateError(MdstreamError):
    """Candles or carried feature state lack the columns feature computation needs."""


class DataGaps(MdstreamError):
    """The job finished, but some input was incomplete (a truncated file): the rest is marked gap=feed."""

    exit_code = 3


class Interrupted(MdstreamError):
    """The job was stopped by a signal; whole days up to `committed` were written, nothing after."""

    exit_code = 130

    def __init__(self, message: str, *, committed: list[str] | None = None, exit_code: int = 130):
        self.committed = list(committed or [])
        self.exit_code = exit_code
        super().__init__(message)
