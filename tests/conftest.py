"""Shared fixtures: where the real exchange recordings live, and small tick builders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def real_data_dir() -> Path:
    """Folder of real exchange recordings: $MDSTREAM_REAL_DATA or ../shared/data/real beside the repo."""
    return Path(os.environ.get("MDSTREAM_REAL_DATA", REPO.parent / "shared" / "data" / "real"))


@pytest.fixture(autouse=True)
def _no_venue_instrument_lists(monkeypatch):
    """Tests never ask a venue for its instrument list over the network (those that test the fetch point it at a
    local server); the environment reaches CLI subprocesses too."""
    monkeypatch.setenv("MDSTREAM_INSTRUMENTS_FETCH", "off")


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real-data folder, or skip the test with the reason when it is absent."""
    folder = real_data_dir()
    if not folder.is_dir():
        pytest.skip(f"real exchange recordings not found at {folder} (set MDSTREAM_REAL_DATA)")
    return folder


from support.bq_emulator import bq_dataset, bq_emulator  # noqa: E402,F401  (session fixtures: the local BigQuery emulator)
from support.instrument_http import instrument_server  # noqa: E402,F401  (fixture: venue instrument lists on 127.0.0.1)
from support.tardis_http import tardis_server  # noqa: E402,F401  (fixture: a Tardis download server on 127.0.0.1)
