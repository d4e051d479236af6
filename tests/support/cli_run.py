"""Run the real `mdstream` executable in a subprocess, and check that a failure is one clean line."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

MDSTREAM = str(Path(sys.executable).with_name("mdstream"))


@dataclass
class Run:
    """What a finished command left behind."""

    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        """Standard output and error together."""
        return self.out + self.err


def env(**extra: str) -> dict[str, str]:
    """The test's environment, unbuffered, without cloud credentials, plus `extra`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MDSTREAM_BQ", "GOOGLE_"))}
    base.update(PYTHONUNBUFFERED="1", COLUMNS="200", **extra)
    return base


def mdstream(*args: str, cwd: Path | None = None, timeout: float = 120, **extra: str) -> Run:
    """Run `mdstream args...` to completion."""
    done = subprocess.run([MDSTREAM, *args], cwd=cwd, env=env(**extra), capture_output=True, text=True,
                          timeout=timeout)
    return Run(done.returncode, done.stdout, done.stderr)


def start(*args: str, cwd: Path | None = None, **extra: str) -> subprocess.Popen:
    """Start `mdstream args...` with piped output (text, line by line)."""
    return subprocess.Popen([MDSTREAM, *args], cwd=cwd, env=env(**extra), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1)


def assert_one_line_error(run: Run, *needles: str, code: int | None = None) -> str:
    """The failure is exactly one `Error:` line on standard error containing every needle, no traceback."""
    assert "Traceback" not in run.text, run.text
    assert "Aborted!" not in run.text, run.text
    if code is not None:
        assert run.code == code, run.text
    else:
        assert run.code != 0, run.text
    errors = [line for line in run.err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, run.err
    for needle in needles:
        assert needle.lower() in errors[0].lower(), errors[0]
    return errors[0]
