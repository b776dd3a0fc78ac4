"""``prefgen cache``: what a store's per-stage cache holds, and cleaning it."""

from __future__ import annotations

from pathlib import Path

import click

from prefgen.cli.output import print_columns


@click.group()
def cache() -> None:
    """Inspect or clean the per-stage cache of a store."""


@cache.command("ls")
@click.argument("store", type=click.Path(path_type=Path))
def cache_ls(store: Path) -> None:
    """Cache entries by stage: shards, rows, size, and whether the last build of a recipe used them."""
    from prefgen.engine.cache import summarize
    from prefgen.store.folder import Store

    rows = summarize(Store(store).root / ".prefgen" / "cache")
    if not rows:
        click.echo(f"{store}: the cache is empty")
        return
    print_columns(("stage", "entries", "rows", "size", "in use"), rows)


@cache.command("prune")
@click.argument("store", type=click.Path(path_type=Path))
@click.option("--all", "everything", is_flag=True, help="Remove every entry, not only those no last build used.")
def cache_prune(store: Path, everything: bool) -> None:
    """Remove cache entries that the last build of each recipe did not use (or all of them)."""
    from prefgen.engine.cache import StageCache, in_use
    from prefgen.store.folder import Store

    root = Store(store).root / ".prefgen" / "cache"
    removed, freed = StageCache(root).prune(() if everything else in_use(root))
    click.echo(f"removed {removed} entries ({freed / 1e6:.1f} MB)")
