"""How a Parquet day or batch becomes visible all at once: its files are staged under root/.staging/<token>/
(outside the trees readers glob), a commit journal listing the moves is written and synced, then the files
are renamed into place and the day's older files removed. A failure before the journal leaves nothing
visible and nothing behind; a crash after it is rolled forward by `recover` when the next sink opens."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import time
from pathlib import Path

import polars as pl

STAGING = ".staging"
ABANDONED_AFTER_S = 3600.0  # staging of another machine's process is taken as dead after this long


def write_file(frame: pl.DataFrame, path: Path) -> None:
    """`frame` as a zstd Parquet file at `path`, encoded in memory first so that a write failure is the
    operating system's own error (errno ENOSPC for a full disk), not the encoder's."""
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=True)
    with open(path, "wb") as handle:
        handle.write(buffer.getbuffer())


class Commit:
    """Files of one day or batch staged under root/.staging/<token>/, then moved into place in one commit."""

    def __init__(self, root: Path):
        self.root = root
        self.token = f"{time.time_ns():020d}-{socket.gethostname()}-{os.getpid()}"
        self.folder = root / STAGING / self.token
        self.moves: list[tuple[Path, Path]] = []
        self.journaled = False  # past this point the commit is finished, now or by `recover`

    def stage(self, frame: pl.DataFrame, target: Path) -> None:
        """Write `frame` for `target` into the staging folder (nothing visible yet)."""
        staged = self.folder / target.relative_to(self.root)
        staged.parent.mkdir(parents=True, exist_ok=True)
        write_file(frame, staged)
        self.moves.append((staged, target))

    def apply(self, remove: list[Path]) -> None:
        """Journal the moves and removals (fsync), create the target folders, then carry them out. Before the
        journal exists a failure leaves nothing visible; after it, `recover` finishes the commit."""
        for _, target in self.moves:
            target.parent.mkdir(parents=True, exist_ok=True)
        journal = self.root / STAGING / f"{self.token}.commit"
        plan = {"moves": [[str(a), str(b)] for a, b in self.moves], "remove": [str(p) for p in remove]}
        temporary = journal.with_suffix(".tmp")
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(plan, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, journal)
        self.journaled = True
        finish(journal)

    def abandon(self) -> None:
        """Remove whatever was staged, unless the commit was journaled (then `recover` finishes it)."""
        if self.journaled:
            return
        shutil.rmtree(self.folder, ignore_errors=True)
        for leftover in (self.root / STAGING).glob(f"{self.token}.*"):
            leftover.unlink(missing_ok=True)
        _remove_if_empty(self.root / STAGING)


def _remove_if_empty(folder: Path) -> None:
    """rmdir `folder` if it exists and is empty (another commit may be using it)."""
    try:
        folder.rmdir()
    except OSError:
        pass


def finish(journal: Path) -> None:
    """Carry out a commit journal: move the staged files still there, remove the listed files, drop the journal."""
    plan = json.loads(journal.read_text(encoding="utf-8"))
    for staged, target in plan["moves"]:
        if Path(staged).exists():
            os.replace(staged, target)
    keep = {target for _, target in plan["moves"]}
    for path in plan["remove"]:
        if path not in keep:
            Path(path).unlink(missing_ok=True)
    shutil.rmtree(journal.with_suffix(""), ignore_errors=True)
    journal.unlink(missing_ok=True)
    _remove_if_empty(journal.parent)


def _dead(token: str) -> bool:
    """Whether the writer of a staging token (<ns>-<host>-<pid>) is gone: its process, if on this machine,
    else after ABANDONED_AFTER_S."""
    stamp, _, rest = token.partition("-")
    host, _, pid = rest.rpartition("-")
    try:
        started, pid_number = int(stamp) / 1e9, int(pid)
    except ValueError:
        return True
    if host != socket.gethostname():
        return time.time() - started > ABANDONED_AFTER_S
    try:
        os.kill(pid_number, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def recover(root: Path) -> None:
    """Finish commits a crash interrupted after their journal; drop staging folders that never got one."""
    staging = root / STAGING
    if not staging.is_dir():
        return
    for journal in sorted(staging.glob("*.commit")):
        if _dead(journal.name.split(".")[0]):
            finish(journal)
    for leftover in staging.iterdir():
        if not _dead(leftover.name.split(".")[0]):
            continue  # another writer (a shard) is staging or committing right now
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
    _remove_if_empty(staging)
