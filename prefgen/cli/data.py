"""The store commands: ``versions``, ``show``, ``query``, ``derive``, ``export``, ``push``, ``pull``, ``verify``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import click

from prefgen.cli.output import print_columns, write_rows


@click.command()
@click.argument("store", type=click.Path(path_type=Path))
def versions(store: Path) -> None:
    """List a store's versions: name, rows, parent, creation time and message."""
    from prefgen.store.folder import Store

    opened = Store(store)
    manifests = opened.manifests()
    if not manifests:
        click.echo(f"{store}: no versions yet")
        return
    rows = [
        (
            m.version,
            str(m.rows),
            "+".join(m.parents or []) or m.parent or "-",
            f"{m.created_at:%Y-%m-%d %H:%M:%S}",
            m.origin,
            m.message,
        )
        for m in manifests
    ]
    print_columns(("version", "rows", "parent", "created (UTC)", "origin", "message"), rows)
    for m in manifests:  # the cheap checks only (sizes, parquet marks): listing stays instant
        found = opened.damage(m)
        if found is not None:
            click.echo(f"warning: {found}", err=True)


@click.command()
@click.argument("ref", metavar="STORE[@VERSION]")
@click.option("-n", "limit", default=5, show_default=True, type=click.IntRange(min=1), help="Pairs to show.")
def show(ref: str, limit: int) -> None:
    """Show a version's summary and a sample of its pairs (text only)."""
    from prefgen.cli.show import render_version
    from prefgen.store.query import parse_ref

    store, version = parse_ref(ref)
    store.check_readable(version)  # before the header: a damaged version prints only its one error line
    render_version(store, version, limit)


@click.command()
@click.argument("store", type=click.Path(path_type=Path))
@click.argument("sql")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json", "parquet"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file.")
@click.option("--images", is_flag=True, help="Keep image bytes in the views (left out by default).")
def query(store: Path, sql: str, fmt: str, output: Path | None, images: bool) -> None:
    """Run read-only SQL over a store. Views: `pairs` (latest version), one per version (quote names with dots,
    e.g. "v1.2"), and `versions`."""
    from prefgen.core.errors import PrefgenError
    from prefgen.store.folder import Store

    if fmt == "parquet":
        if output is None:
            raise PrefgenError("--format parquet needs -o FILE")
        import pyarrow.parquet as pq

        from prefgen.store.query import run_query

        pq.write_table(run_query(Store(store), sql, images=images), output)
        return
    from prefgen.store.query import fetch_rows

    columns, rows = fetch_rows(Store(store), sql, images=images)
    write_rows(columns, rows, fmt, output)


@click.command()
@click.argument("store", type=click.Path(path_type=Path))
@click.option("--sql", required=True, help="One SELECT over the store's views; its rows become the new version.")
@click.option("-m", "--message", required=True, help="What the new version is.")
@click.option("--version", "version", help="Name of the new version (default: the next vN).")
def derive(store: Path, sql: str, message: str, version: str | None) -> None:
    """Publish the rows of a SQL query as a new version (parent recorded, images kept)."""
    from prefgen.store.derive import derive as run_derive
    from prefgen.store.folder import Store

    manifest = run_derive(Store(store), sql, message=message, version=version)
    click.echo(f"published {manifest.version}: {manifest.rows} rows (parent {manifest.parent})")


@click.command()
@click.argument("ref", metavar="STORE[@VERSION]")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["llava", "seva", "llamafactory", "swift", "jsonl"]),
    required=True,
    help="llava: CSR's LLaVA json; seva: SeVa/SENA json; llamafactory: LLaMA-Factory sharegpt ranking data; "
    "swift: ms-swift RLHF jsonl (messages, rejected_response, images); jsonl: every column, one row per line.",
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write (created; must be empty if it exists).",
)
def export(ref: str, fmt: str, out: Path) -> None:
    """Export a version for other trainers, with its images written as files beside the data."""
    from prefgen.store.export import export_version
    from prefgen.store.query import parse_ref

    store, version = parse_ref(ref)
    result = export_version(store, version, fmt, out)
    click.echo(f"exported {result.rows} rows of {result.version} as {fmt} to {out}")


@click.command()
@click.argument("store", type=click.Path(path_type=Path))
@click.option("--repo", required=True, help="Hub dataset repo id, `user/name`.")
@click.option("--version", "version", help="Version to push and tag (default: the latest).")
@click.option("--private", is_flag=True, help="Create the repo as private if it does not exist.")
def push(store: Path, repo: str, version: str | None, private: bool) -> None:
    """Push a store's data, card and manifests to the Hub in one commit, and tag the version."""
    from prefgen.store.folder import Store
    from prefgen.store.hub import push as hub_push

    result = hub_push(Store(store), repo, version=version, private=private)
    click.echo(result.summary())


@click.command()
@click.argument("ref", metavar="REPO[@TAG]")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
def pull(ref: str, dest: Path) -> None:
    """Download a Hub dataset repo (at a tag) as a local store."""
    from prefgen.core.refs import HUB_PREFIX, split_hub_ref
    from prefgen.store.hub import pull as hub_pull

    repo, revision = split_hub_ref(ref.removeprefix(HUB_PREFIX), original=ref)
    store = hub_pull(repo, dest, revision=revision)
    click.echo(
        f"pulled {repo}{'@' + revision if revision else ''} to {store.root} "
        f"(versions: {', '.join(store.versions()) or 'none'})"
    )


@click.command()
@click.argument("ref", metavar="STORE[@VERSION]")
@click.option("--quick", is_flag=True, help="Check sizes and row counts only; skip the sha256 of every byte.")
@click.pass_context
def verify(ctx: click.Context, ref: str, quick: bool) -> None:
    """Check a store's files against their manifests: sha256, sizes and rows of the data, the rejects, each
    manifest and its parent, the card's configs, and no stray or missing files. Prints one line per problem and
    exits 1 when there is any."""
    from prefgen.core.refs import split_store_ref
    from prefgen.store.folder import Store
    from prefgen.store.verify import total_bytes, verify_store

    location, version = split_store_ref(ref)
    store = Store(location)
    progress = None if quick else _hash_progress(total_bytes(store, version))
    report = verify_store(store, version, quick=quick, progress=progress)
    for problem in report.problems:
        click.echo(str(problem))
    if report.problems:
        ctx.exit(1)
    click.echo(report.summary(store.root, quick))


_PROGRESS_FROM_BYTES = 1 << 30  # stores under 1 GB verify in about a second: no progress lines
_PROGRESS_EVERY_S = 5.0


def _hash_progress(total: int) -> Callable[[int], None] | None:
    """Progress lines on stderr while a large store is hashed: done, total, percent and speed every few seconds."""
    if total < _PROGRESS_FROM_BYTES:
        return None
    start = last = time.monotonic()
    done = 0

    def advance(n: int) -> None:
        nonlocal done, last
        done += n
        now = time.monotonic()
        if now - last >= _PROGRESS_EVERY_S:
            last = now
            rate = done / max(now - start, 1e-9) / 1e6
            share = f"{100 * done / total:.0f}%"
            click.echo(f"verify: hashed {done / 1e9:.1f} of {total / 1e9:.1f} GB ({share}, {rate:.0f} MB/s)", err=True)

    return advance
