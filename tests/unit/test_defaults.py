"""The CLI's option defaults are the request objects' defaults, and the layers below share the same ones."""

from __future__ import annotations

import inspect
import re
from dataclasses import fields

import click
import pytest
from click.testing import CliRunner

from mdstream.cli import main as cli
from mdstream.contract import defaults as d
from mdstream.jobs.batcher import micro_batches
from mdstream.jobs.requests import BackfillOptions, StreamRequest
from mdstream.jobs.stream import StreamOptions
from mdstream.sources.binance import BinanceSource
from mdstream.sources.replay import ReplaySource
from mdstream.sources.synthetic import SyntheticSource
from mdstream.sources.tardis_machine import TardisMachineSource


def _shown(value) -> str:
    """How click shows a default in --help: a tuple of timeframes is the comma-joined option value."""
    return ",".join(value) if isinstance(value, tuple) else str(value)


@pytest.mark.parametrize(("command", "request_type"), [("stream", StreamRequest), ("backfill", BackfillOptions)])
def test_cli_help_defaults_are_the_request_defaults(command, request_type):
    """Every option named like a request field shows that field's default in --help, and parses to it."""
    group_cmd = cli.get_command(None, command)
    ctx = click.Context(group_cmd, info_name=command)
    assert CliRunner().invoke(cli, [command, "--help"]).exit_code == 0
    by_name = {spec.name: spec.default for spec in fields(request_type)}
    checked = 0
    for param in group_cmd.params:
        if param.name not in by_name or param.default is None or not getattr(param, "show_default", False):
            continue
        expected = by_name[param.name]
        option, help_line = param.get_help_record(ctx)
        shown = re.search(r"\[default: ([^;\]]*)", help_line)
        assert shown is not None, f"{option} shows no default in `mdstream {command} --help`"
        assert shown.group(1) == _shown(expected), f"{option}: --help says {shown.group(1)}, request says {expected}"
        assert param.default == (",".join(expected) if isinstance(expected, tuple) else expected)
        checked += 1
    assert checked >= (10 if command == "stream" else 3)


def test_stream_defaults_have_one_home():
    """The request, the job options, the batcher and every source take their defaults from contract.defaults."""
    request = StreamRequest()
    assert (request.flush_interval, request.max_rows) == (d.FLUSH_INTERVAL_S, d.MAX_ROWS)
    assert (request.lateness, request.horizon, request.max_skew) == (d.LATENESS_S, d.HORIZON_S, d.MAX_SKEW_S)
    assert (request.silence_timeout, request.max_feed_down) == (d.SILENCE_TIMEOUT_S, d.MAX_FEED_DOWN_S)
    options = StreamOptions()
    assert (options.lateness, options.horizon, options.max_skew, options.max_quiet) == (
        d.LATENESS_S, d.HORIZON_S, d.MAX_SKEW_S, d.MAX_QUIET_S)
    expected = {"flush_interval": d.FLUSH_INTERVAL_S, "max_rows": d.MAX_ROWS, "silence_timeout": d.SILENCE_TIMEOUT_S,
                "backoff_initial": d.BACKOFF_INITIAL_S, "backoff_max": d.BACKOFF_MAX_S}
    for target in (micro_batches, BinanceSource, TardisMachineSource, ReplaySource, SyntheticSource):
        params = inspect.signature(target).parameters
        for name, value in expected.items():
            if name in params:
                assert params[name].default == value, f"{target.__name__}({name}=...) default drifted"


def test_serve_poll_default_has_one_home():
    """`mdstream serve --poll`, the server's options and the live feed poll at the same default."""
    from mdstream.ops.live import LiveFeed
    from mdstream.ops.serve import ServeOptions

    poll = next(p for p in cli.get_command(None, "serve").params if p.name == "poll")
    assert poll.default == ServeOptions(db_path="x").poll_s == d.SERVE_POLL_S
    assert inspect.signature(LiveFeed).parameters["poll_s"].default == d.SERVE_POLL_S
