"""The ``prefgen`` command line: a thin layer over the library.

Start-up stays light: this module imports only click, and each command imports what it needs when it runs, so
``prefgen --help``, ``versions`` and ``query`` never load torch or transformers.
"""

from __future__ import annotations

import sys

import click

from prefgen import __version__


class _Group(click.Group):
    """Turns prefgen's own errors (and unexpected ones) into one line on stderr; ``--debug`` shows the traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:  # the reader went away (`prefgen query ... | head`): not an error of ours
            sys.stderr.close()
            ctx.exit(0)
        except Exception as exc:
            if ctx.meta.get("prefgen.debug"):
                raise
            from prefgen.core.errors import PrefgenError

            if isinstance(exc, PrefgenError):
                click.echo(f"error: {exc}", err=True)
            else:
                click.echo(f"error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", err=True)
            if getattr(exc, "log_file", None):  # what the libraries printed, kept out of the console
                click.echo(f"log: {exc.log_file}", err=True)
            ctx.exit(1)


@click.group(cls=_Group, context_settings={"auto_envvar_prefix": "PREFGEN", "help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks.")
@click.version_option(__version__, prog_name="prefgen")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Build versioned preference datasets for vision-language models from unannotated images, query them with
    DuckDB, push them to the Hub, and train on them."""
    ctx.meta["prefgen.debug"] = debug


def _register_commands() -> None:
    # each module imports click and small tables only; the heavy libraries load inside the commands
    from prefgen.cli.build import build, schema, stages, validate
    from prefgen.cli.cache import cache
    from prefgen.cli.data import derive, export, pull, push, query, show, verify, versions
    from prefgen.cli.eval import eval_command
    from prefgen.cli.models import models
    from prefgen.cli.report import report
    from prefgen.cli.shapes import shapes
    from prefgen.cli.train import rounds_cmd, train

    for command in (
        validate,
        schema,
        stages,
        build,
        versions,
        show,
        query,
        derive,
        export,
        report,
        push,
        pull,
        verify,
        train,
        rounds_cmd,
        cache,
        models,
        shapes,
        eval_command,
    ):
        cli.add_command(command)


_register_commands()


def main() -> None:
    cli(prog_name="prefgen")


if __name__ == "__main__":
    main()
