"""The command line: the click group in ``main``, one module per group of commands."""

from prefgen.cli.main import cli, main

__all__ = ["cli", "main"]
