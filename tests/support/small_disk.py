"""A small file system of its own for disk-full tests: a tmpfs of a chosen size mounted on a temporary folder.
Mounting needs root (or CAP_SYS_ADMIN); where that is missing the test is skipped, saying so."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_disk(folder: Path, size: str, options: str = "") -> Iterator[Path]:
    """`folder` with a tmpfs of `size` (e.g. "4m") mounted on it for the duration of the block; `options`
    are more mount options (e.g. "ro")."""
    folder.mkdir(parents=True, exist_ok=True)
    if not shutil.which("mount"):
        pytest.skip("disk-full test needs `mount` to create a small tmpfs")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(filter(None, [f"size={size}", options])), "tmpfs",
                           str(folder)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"disk-full test cannot mount a {size} tmpfs (needs root or CAP_SYS_ADMIN): "
                    f"{done.stderr.strip() or done.returncode}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder: Path, leave_bytes: int = 0) -> Path:
    """Write a filler file into `folder` until at most `leave_bytes` stay free; its path."""
    filler = folder / "filler"
    free = shutil.disk_usage(folder).free
    with open(filler, "wb") as handle:
        try:
            handle.write(b"\0" * max(0, free - leave_bytes))
            handle.flush()
            os.fsync(handle.fileno())
        except OSError:
            pass  # the disk is full: that is the point
    return filler
