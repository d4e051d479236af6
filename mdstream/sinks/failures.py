"""Root causes of write failures in one phrase (disk full, lock held, permission, network), and whether
waiting can cure them: the sinks name the cause in one line, and a stream keeps its rows while it waits."""

from __future__ import annotations

import errno
import re

DISK_FULL = "disk full"
LOCK_HELD = "file locked by another process"
PERMISSION = "permission denied"
READ_ONLY = "read-only file system"
NETWORK = "network unreachable"
MISSING = "no such file or folder"

_ERRNO = {
    errno.ENOSPC: DISK_FULL, errno.EDQUOT: DISK_FULL, errno.EFBIG: DISK_FULL,
    errno.EACCES: PERMISSION, errno.EPERM: PERMISSION, errno.EROFS: READ_ONLY,
    errno.ENOENT: MISSING, errno.ENOTDIR: MISSING,
    errno.ECONNREFUSED: NETWORK, errno.ECONNRESET: NETWORK, errno.EHOSTUNREACH: NETWORK,
    errno.ENETUNREACH: NETWORK, errno.ETIMEDOUT: NETWORK,
}
# Libraries that wrap the system error keep only its text (DuckDB's IO errors, Arrow's): match that.
_TEXT = [
    (re.compile(r"no space left|disk full|quota exceeded|file too large", re.I), DISK_FULL),
    (re.compile(r"could not set lock|conflicting lock|lock on file|database is locked", re.I), LOCK_HELD),
    (re.compile(r"permission denied|operation not permitted", re.I), PERMISSION),
    (re.compile(r"read-only file system", re.I), READ_ONLY),
    (re.compile(r"connection refused|network is unreachable|name or service not known|timed out", re.I), NETWORK),
]
# What waiting can cure: another process lets go of the file, the network comes back, space is freed.
TRANSIENT = {LOCK_HELD, NETWORK, DISK_FULL}


def _origin(error: BaseException) -> tuple[str | None, BaseException]:
    """(root cause, the error in the chain that shows it) of `error` and the errors it was raised from."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        code = getattr(current, "errno", None)
        if isinstance(code, int) and code in _ERRNO:
            return _ERRNO[code], current
        for pattern, name in _TEXT:
            if pattern.search(str(current)):
                return name, current
        current = current.__cause__ or current.__context__
    return None, error


def cause(error: BaseException) -> str | None:
    """The root cause of `error` (or of the errors it was raised from) as one phrase, or None if unknown."""
    return _origin(error)[0]


def first_line(error: BaseException, limit: int = 300) -> str:
    """The first non-empty line of `error`'s message, at most `limit` characters (DuckDB's advice on
    read-only mode after a lock message is dropped)."""
    text = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
    text = text.split(". However, you would be able to open", 1)[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe(error: BaseException, what: str) -> str:
    """'<what> failed: <cause>: <first line of the error that shows it>' (the cause only when it is known)."""
    found, origin = _origin(error)
    detail = first_line(origin)
    return f"{what} failed: {found}: {detail}" if found else f"{what} failed: {detail}"


def sink_error(error: BaseException, what: str):
    """`error` as the sink error of `what` (one line, cause named): SinkUnavailable when waiting can cure it
    (a lock held, a full disk, the network), else SinkError; a sink error is returned as it is."""
    from ..contract.errors import SinkError, SinkUnavailable

    if isinstance(error, SinkError):
        return error
    message = describe(error, what)
    return SinkUnavailable(message) if cause(error) in TRANSIENT else SinkError(message)
