"""``prefgen build``: run a recipe's stages over its source, shard by shard, into a new version of a store.

The source is listed once (cheaply, in a fixed order) and cut into shards. Each shard goes through the stages in
batches; every stage's output for the shard is cached under its fingerprint; the finished shard (and its rejects)
is written to the store's draft. Only when every shard is done is the version published. Killed at any moment, the
same command continues with the unfinished shards, reusing whatever stage outputs reached the cache; because a
stage's results depend only on each row and its per-row seed, the published rows equal an uninterrupted run's.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prefgen.core.config import normal_path
from prefgen.core.errors import PrefgenError
from prefgen.core.fs import atomic_write_text
from prefgen.engine.cache import StageCache, digest, model_identity
from prefgen.engine.fingerprint import code_fingerprint, code_hash, torch_kernels
from prefgen.engine.logs import capture, log_path
from prefgen.engine.progress import Reporter
from prefgen.engine.shards import ShardWorker, StageRun, source_notes
from prefgen.engine.sources.common import PLACEHOLDERS_REMOVED
from prefgen.recipe import Recipe, load_recipe
from prefgen.recipe.readiness import recipe_notes
from prefgen.stages.base import Row, StageParams
from prefgen.store.manifest import Manifest, ModelRef

# runner bookkeeping; `images` carries the picture in the output
INTERNAL_COLUMNS = ("row_id", "image", PLACEHOLDERS_REMOVED)


@dataclass
class BuildOptions:
    out: Path | None = None  # store folder; default: the recipe's output.store
    version: str | None = None  # default: the recipe's output.version, else the next vN
    message: str | None = None
    limit: int | None = None  # read at most this many source images
    preview: int | None = None  # run this many images and return the rows; publish nothing
    fresh: bool = False  # discard an unfinished draft instead of continuing it
    push: str | None = None  # Hub repo to push to after publishing
    quiet: bool = False
    log_json: Path | None = None
    shard_size: int = 64
    batch_size: int | None = None  # rows per stage call; None: 16, or a whole shard for a VLM stage on vLLM
    round: int | None = None
    executor: str = "local"  # "local" (in this process) or "ray"
    address: str | None = None  # Ray: a cluster to join ("auto": the running one); None starts a local cluster
    workers: int | None = None  # Ray: workers per stage unless the stage's resources say; default: cluster CPUs
    vlm_path: Path | None = None  # use this local model as the recipe's VLM (the rounds loop: build with model r)
    overrides: tuple[str, ...] = ()  # KEY=VALUE settings applied to the recipe (`--set`)


@dataclass
class BuildResult:
    manifest: Manifest | None
    rows: list[Row] = field(default_factory=list)  # preview rows
    drops: Counter = field(default_factory=Counter)
    computed: Counter = field(default_factory=Counter)  # shard-stage runs computed, by stage label
    cached: Counter = field(default_factory=Counter)  # shard-stage runs served from the cache, by stage label
    push_summary: str | None = None
    store: Path | None = None
    up_to_date: bool = False  # nothing changed since the latest version, which was returned as it is
    log: Path | None = None  # what libraries, Ray and its workers printed (None when they printed nothing)
    notes: list[str] = field(default_factory=list)  # what the source changed in the rows, one line each


def run_build(recipe_path: Path, options: BuildOptions | None = None) -> BuildResult:
    """Build (or continue, or preview) a version from the recipe at ``recipe_path``. What libraries, Ray and its
    workers print goes to a log file under the store, not to the console: ``BuildResult.log``, and the ``log_file``
    attribute of an error the build raises."""
    options = options or BuildOptions()
    recipe, base = _recipe_to_run(recipe_path, options), Path(recipe_path).parent
    with capture(_log_file(recipe, base, options)) as logs:
        result = _build(recipe, base, options, logs.console)
    result.log = logs.path
    return result


def _build(recipe: Recipe, base: Path, options: BuildOptions, console) -> BuildResult:
    _check_machine(recipe, base)
    from prefgen.engine.sources import reader as sources

    limits = recipe.limits.model_copy(
        update={"max_images": _smallest(recipe.limits.max_images, options.limit, options.preview)}
    )
    items = sources.list_items(recipe.source, limits, recipe.seed, base)
    shards = [items[i : i + options.shard_size] for i in range(0, len(items), options.shard_size)]
    runs = [StageRun(p, p.runtime(p, recipe.seed), _stage_fingerprint(p, recipe, base)) for p in recipe.stages]
    source_fp = digest("source", recipe.source.identity(), code_fingerprint([sources.__name__]))
    with Reporter(quiet=options.quiet, log_json=options.log_json, console=console) as reporter:
        reporter.event("build_start", recipe=recipe.name, items=len(items), shards=len(shards))
        for note in recipe_notes(recipe):  # `validate` and `--plan` print these; a build's log records them
            reporter.event("note", text=note)
        builder = _Builder(recipe, base, runs, source_fp, options, reporter)
        if options.preview:
            return builder.preview(shards, len(items))
        return builder.build_version(shards, items)


def _log_file(recipe: Recipe, base: Path, options: BuildOptions) -> Path:
    """A new log file in the store's ``.prefgen/logs``; in the temp folder for a preview (it writes no store) or a
    folder that cannot become the store (the build refuses it a moment later)."""
    folder = _store_folder(recipe, base, options)
    store_like = folder.is_dir() and (
        (folder / "versions").is_dir() or all(p.name == ".prefgen" for p in folder.iterdir())
    )
    foreign = folder.exists() and not store_like
    if options.preview or foreign:
        return log_path(Path(tempfile.gettempdir()) / "prefgen-logs", "preview" if options.preview else "build")
    return log_path(folder / ".prefgen" / "logs", "build")


def _store_folder(recipe: Recipe, base: Path, options: BuildOptions) -> Path:
    """The store a build writes: ``--out``, else the recipe's, named without ``..`` (`out/x`, not `recipes/../out`)."""
    return Path(options.out) if options.out else normal_path(recipe.output.store, base)


def _recipe_to_run(recipe_path: Path, options: BuildOptions) -> Recipe:
    """The recipe with the command line's overrides, and the rounds loop's model as its VLM."""
    recipe = load_recipe(recipe_path, options.overrides)
    if options.vlm_path is not None:
        if recipe.models.vlm is None:
            raise PrefgenError(f"{recipe_path}: the recipe has no `models.vlm` to replace with {options.vlm_path}")
        vlm = recipe.models.vlm.model_copy(
            update={"path": str(Path(options.vlm_path).resolve()), "id": None, "revision": None}
        )
        recipe = recipe.model_copy(update={"models": recipe.models.model_copy(update={"vlm": vlm})})
    missing = [s.label for s in recipe.stages if s.runtime is None]
    if missing:
        raise PrefgenError(f"stage(s) {', '.join(missing)} cannot run in this prefgen yet (declared, not implemented)")
    return recipe


class _Builder(ShardWorker):
    """A build: the shards' work (``ShardWorker``), handed to an executor, and the version it publishes."""

    def __init__(
        self,
        recipe: Recipe,
        base: Path,
        runs: list[StageRun],
        source_fp: str,
        options: BuildOptions,
        reporter: Reporter,
    ):
        super().__init__(recipe, base, runs, source_fp, options, reporter)
        self.executor = make_executor(options)

    # ------------------------------------------------------------------------------------------------ versions

    def preview(self, shards: list[list], items: int) -> BuildResult:
        """Run the shards with a throw-away cache and return the rows; nothing is written to the store."""
        with tempfile.TemporaryDirectory(prefix="prefgen-preview-") as tmp:
            self.cache = StageCache(Path(tmp))
            self.show_stages(items)
            rows = [row for k, shard in enumerate(shards) for row in self.run_shard(k, shard)[0]]
            self._report_notes()
        notes = source_notes(self.notes)
        return BuildResult(None, rows=rows, drops=self.drops, computed=self.computed, cached=self.cached, notes=notes)

    def build_version(self, shards: list[list], items: list) -> BuildResult:
        store = self._open_store()
        meta, build_key = self._build_key(items)
        latest = self._up_to_date(store, build_key)
        if latest is not None:
            return BuildResult(latest, store=store.root, up_to_date=True)
        version = self.options.version or self.recipe.output.version
        with store.draft(version, meta=meta, fresh=self.options.fresh) as draft:
            if draft.replaced:
                self.reporter.event("draft_replaced", version=draft.version)
                self.reporter.message(
                    f"note: replaced an unfinished draft of {draft.version} left by a different build "
                    "(its finished stages stay in the stage cache)"
                )
            self._run_pending_shards(draft, shards)
            drops = _count_drops(draft.path)
            self._require_rows(draft, drops, store)
            self._remember_used(store.root)
            manifest = self._publish(draft, drops, build_key, len(items), len(shards))
        self.reporter.event("published", version=manifest.version, rows=manifest.rows)
        result = BuildResult(manifest, drops=drops, computed=self.computed, cached=self.cached, store=store.root)
        result.notes = source_notes(self.notes)
        result.push_summary = self._push(store, manifest.version)
        return result

    def _open_store(self):
        from prefgen.store.folder import Store

        # normalised so that messages name the store as `out/x`, not `recipes/../out/x`
        store = Store.create(_store_folder(self.recipe, self.base, self.options))
        self.cache = StageCache(store.root / ".prefgen" / "cache")
        return store

    def _build_key(self, items: list) -> tuple[dict[str, Any], str]:
        """The draft's meta, and what the rows depend on: recipe, images, and each stage's code and models (not in
        the draft's meta, so that a build stopped by a stage bug can be continued once the bug is fixed)."""
        meta = {
            "recipe": self.recipe.fingerprint(),
            "items": digest([(i.key, i.fingerprint) for i in items]),
            "shard_size": self.options.shard_size,
            "round": self.options.round,
        }
        return meta, digest(meta, [r.fingerprint for r in self.runs], self.source_fp)

    def _up_to_date(self, store, build_key: str) -> Manifest | None:
        """The latest version when it was built from exactly this (and no new version was asked for)."""
        options = self.options
        latest = store.manifest() if store.latest() else None
        if latest is None or options.fresh or options.version or self.recipe.output.version:
            return None
        if latest.stats.get("build_key") != build_key:
            return None
        self.reporter.message(
            f"{latest.version} was built from this recipe and these images; nothing to do "
            "(--fresh builds a new version anyway)"
        )
        return latest

    def _run_pending_shards(self, draft, shards: list[list]) -> None:
        done = draft.shards()
        if done:
            self.reporter.message(f"continuing draft {draft.version}: {len(done)} of {len(shards)} shard(s) done")
        pending = [(k, shard) for k, shard in enumerate(shards) if k not in done]
        self.show_stages(sum(len(shard) for _, shard in pending))
        for k, rows, rejects in self.executor.run(self, pending):
            draft.write_rejects(k, rejects)
            draft.write_shard(k, [self._output_row(row) for row in rows])
            self.reporter.event("shard_done", shard=k, rows=len(rows), rejects=len(rejects))
        self._report_notes()

    def _report_notes(self) -> None:
        for note in source_notes(self.notes):
            self.reporter.event("note", text=note)

    def _require_rows(self, draft, drops: Counter, store) -> None:
        if not any(_shard_rows(p) for p in draft.shards().values()):
            notes = "".join(f"; {note}" for note in source_notes(self.notes))
            raise PrefgenError(
                f"the build produced no pairs ({_describe(drops)}); the draft {draft.version} is kept"
                f" in {store.root}/.prefgen/drafts for inspection{notes}"
            )

    def _publish(self, draft, drops: Counter, build_key: str, items: int, shards: int) -> Manifest:
        recipe, options = self.recipe, self.options
        return draft.publish(
            parent=_previous_build(draft.store, recipe.name),
            message=options.message if options.message is not None else recipe.output.message,
            drops=dict(drops),
            stats={**self._stats(items, shards), "build_key": build_key},
            recipe=recipe.model_dump(mode="json"),
            recipe_fingerprint=recipe.fingerprint(),
            models=_model_refs(recipe),
            seed=recipe.seed,
            round=options.round,
            fingerprints={r.params.label: r.fingerprint for r in self.runs},
        )

    def _push(self, store, version: str) -> str | None:
        """Push the new version when the command line or the recipe names a Hub repo; its summary line."""
        target = self.recipe.output.push
        repo = self.options.push or (target.repo if target else None)
        if not repo:
            return None
        from prefgen.store.hub import push

        return push(store, repo, version=version, private=target.private if target else True).summary()

    def _output_row(self, row: Row) -> Row:
        out = {k: v for k, v in row.items() if k not in INTERNAL_COLUMNS}
        out.setdefault("id", row["row_id"])
        out["recipe_fingerprint"] = self.recipe.fingerprint()
        out["model"] = _model_label(self.recipe)
        if self.options.round is not None:
            out["round"] = self.options.round
        out["created_at"] = datetime.now(timezone.utc)
        return out

    def _stats(self, items: int, shards: int) -> dict[str, Any]:
        return {
            "source_items": items,
            "shards": shards,
            **self.executor.describe(),
            **torch_kernels(),
            **({"source_notes": dict(self.notes)} if +self.notes else {}),
            "stages": {
                r.params.label: {
                    "rows_seen": r.seen,
                    "errors": r.errors,
                    "seconds": round(r.seconds, 3),
                    "computed_shards": self.computed[r.params.label],
                    "cached_shards": self.cached[r.params.label],
                }
                for r in self.runs
            },
        }

    def _remember_used(self, root: Path) -> None:
        import json

        folder = root / ".prefgen" / "cache" / "used"
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / f"{self.recipe.name}.json", json.dumps(sorted(set(self.used))))


def make_executor(options: BuildOptions):
    if options.executor == "local":
        from prefgen.engine.executors.local import LocalExecutor

        return LocalExecutor()
    if options.executor == "ray":
        from prefgen.engine.executors.ray import RayExecutor

        return RayExecutor(options.address, options.workers)
    raise PrefgenError(f"unknown executor {options.executor!r} (local or ray)")


def _stage_fingerprint(params: StageParams, recipe: Recipe, base: Path) -> str:
    models = {name: model_identity(getattr(recipe.models, name), base) for name in params.models}
    config = params.model_dump(mode="json", exclude={"resources"})  # where a stage runs never changes its rows
    engine = recipe.models.vlm.engine if recipe.models.vlm is not None else "hf"
    return digest(params.stage_type(), config, code_hash(type(params), engine), models, recipe.seed)


def _check_machine(recipe: Recipe, base: Path) -> None:
    """Every model a stage uses, and the source, proven available before anything is written or run: a CLIP that
    cannot load must not wait for hours of VLM stages to say so (``prefgen validate`` asks the same questions)."""
    from prefgen.recipe.readiness import machine_problems

    found = [message for _, message in machine_problems(recipe, base)]
    if found:
        more = f" (and {len(found) - 1} more; `prefgen validate` lists them)" if len(found) > 1 else ""
        raise PrefgenError(found[0] + more)


def _previous_build(store, name: str) -> str | None:
    """The parent of a build: the latest version built from a recipe of the same name (the one this build
    revises), or none; an unrelated recipe's version, however recent, is not a parent."""
    built = [m for m in store.manifests() if m.origin in ("build", "round") and (m.recipe or {}).get("name") == name]
    return built[-1].version if built else None


def _count_drops(draft_path: Path) -> Counter:
    import pyarrow.parquet as pq

    counts: Counter = Counter()
    for part in sorted(draft_path.glob("rejects-*.parquet")):
        counts.update(pq.read_table(part, columns=["reason"]).column("reason").to_pylist())
    return counts


def _shard_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.read_metadata(path).num_rows


def _model_refs(recipe: Recipe) -> dict[str, ModelRef]:
    refs = {}
    if recipe.models.vlm:
        refs["vlm"] = ModelRef(
            id=recipe.models.vlm.id, revision=recipe.models.vlm.revision, path=recipe.models.vlm.path
        )
    if recipe.models.clip:
        refs["clip"] = ModelRef(
            id=recipe.models.clip.model, revision=recipe.models.clip.pretrained, path=recipe.models.clip.path
        )
    return refs


def _model_label(recipe: Recipe) -> str | None:
    """The rows' ``model``: a Hub id at its revision, or a local model's path as the recipe wrote it. Of an absolute
    path only the last two parts are kept (``round-2/model``): a pushed dataset must not carry this machine's
    folders (the manifest keeps the whole path, for lineage)."""
    vlm = recipe.models.vlm
    if vlm is None:
        return None
    if vlm.path is None:
        return f"{vlm.id}@{vlm.revision or 'main'}"
    path = Path(vlm.path).expanduser()
    return "/".join(path.parts[-2:]) if path.is_absolute() else vlm.path


def _describe(drops: Counter) -> str:
    return ", ".join(f"{reason}: {n}" for reason, n in drops.most_common()) or "no rows in the source"


def _smallest(*values: int | None) -> int | None:
    given = [v for v in values if v]
    return min(given) if given else None
