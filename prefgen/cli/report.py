"""``prefgen report``: one self-contained HTML file for a version, a comparison or rounds runs."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("targets", nargs=-1, required=True, metavar="STORE[@VERSION] | RUNS_DIR...")
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("report.html"),
    show_default=True,
    help="HTML file to write (self-contained: it opens offline, fetches nothing).",
)
@click.option("--compare", nargs=2, metavar="V1 V2", help="Compare two versions of the store.")
def report(targets: tuple[str, ...], out: Path, compare: tuple[str, str] | None) -> None:
    """HTML report of a version (summary, score histograms, a gallery of pairs), of two versions (--compare), or
    of `prefgen train --rounds` folders (metrics per round, several runs overlaid, lineage)."""
    from prefgen.report import write_report

    click.echo(write_report(list(targets), out, compare=compare).summary())
