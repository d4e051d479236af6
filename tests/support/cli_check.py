"""Parse a command line with the real CLI without running it."""

from __future__ import annotations

import click

KNOWN_SUBCOMMANDS = {"backfill", "stream", "query", "verify", "bigquery", "chart", "demo"}


def invoke_check(args: list[str]) -> click.Context:
    """Parse `mdstream <args>` with the real click CLI (types, choices, callbacks) without running it."""
    from mdstream.cli import main

    command: click.Command = main
    ctx = click.Context(main, info_name="mdstream")
    rest = list(args)
    while isinstance(command, click.Group):
        assert rest, f"no subcommand in {args}"
        name, rest = rest[0], rest[1:]
        sub = command.get_command(ctx, name)
        assert sub is not None, f"unknown mdstream subcommand {name!r} in {args}"
        command = sub
        if isinstance(command, click.Group):
            ctx = click.Context(command, info_name=name, parent=ctx)
    return command.make_context(command.name or "", rest, parent=ctx)
