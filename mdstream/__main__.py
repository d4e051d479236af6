"""`python -m mdstream` runs the CLI."""

from .cli import entry

entry()
