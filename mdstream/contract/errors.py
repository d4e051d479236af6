"""Every error mdstream raises; the CLI turns them into clean messages at the edge."""

from __future__ import annotations


class MdstreamError(Exception):
    """Base of every mdstream error."""


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
