"""The work on one shard, whichever executor runs it: the source read and each stage in turn, every step served
from the stage cache when it holds the step's fingerprint, bad rows turned into counted drops.

``ShardWorker`` is what the in-process runner does for each shard and what a Ray worker does for the step it owns
(``prefgen.engine.executors.ray``): one code path, so both executors write the same rows and the same cache entries.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from prefgen.core.errors import PrefgenError
from prefgen.engine.cache import StageCache, digest
from prefgen.engine.model_pool import RecipeModels
from prefgen.engine.progress import SOURCE, Reporter
from prefgen.engine.sources.common import PLACEHOLDERS_REMOVED
from prefgen.recipe import Recipe
from prefgen.stages.base import Drop, Row, Stage, StageParams

MIN_ROWS_FOR_ERROR_RATE = 20  # judge a stage's error rate only once it has seen this many rows
PLACEHOLDER_NOTE = "questions_with_image_placeholder"  # source questions whose `<image>` was taken out


def source_notes(notes: Counter) -> list[str]:
    """The lines a build prints about what its source changed in the rows (nothing is dropped for it)."""
    n = notes[PLACEHOLDER_NOTE]
    if not n:
        return []
    return [
        f"note: took the <image> placeholder out of {n} source question{'' if n == 1 else 's'} "
        "(each row passes its image to the model itself)"
    ]


@dataclass
class ShardState:
    """A shard between stages: its rows so far, the chained cache fingerprint of what made them, its rejects, the
    source images (cache entries are stored without them) and, on Ray, what each step did (``StepReport``s)."""

    index: int
    fp: str
    rows: list[Row]
    rejects: list[dict]
    images: dict
    reports: list[dict] = field(default_factory=list)
    error: str | None = None  # on Ray: a step's PrefgenError, carried to the driver, which raises it


@dataclass
class StageRun:
    """One stage of a build and its running counts."""

    params: StageParams
    stage: Stage
    fingerprint: str  # of the stage's configuration; chained with the shard's upstream fingerprint
    ready: bool = False
    seen: int = 0
    errors: int = 0
    seconds: float = 0.0


class ShardWorker:
    """Runs shards (or single steps of them) through a recipe's stages, against a stage cache. ``options`` needs
    ``batch_size``; ``reporter`` hears of every step."""

    def __init__(self, recipe: Recipe, base: Path, runs: list[StageRun], source_fp: str, options, reporter: Reporter):
        self.recipe, self.base, self.runs, self.source_fp = recipe, base, runs, source_fp
        self.options, self.reporter = options, reporter
        self.models = RecipeModels(recipe.models, base)
        self.cache: StageCache | None = None
        self.used: list[str] = []  # fingerprints of the cache entries this build read or wrote
        self.drops: Counter = Counter()
        self.computed: Counter = Counter()
        self.cached: Counter = Counter()
        self.notes: Counter = Counter()  # what the source changed in its rows, by kind (see ``source_notes``)

    def show_stages(self, items: int) -> None:
        """Progress bars for a run that reads ``items`` source images (those of the shards not done yet)."""
        self.reporter.stages([r.params.label for r in self.runs], items)

    def run_shard(self, index: int, items: list) -> tuple[list[Row], list[dict]]:
        """Run every stage over one shard; returns the final rows and the rejects (row_id, stage, reason, detail)."""
        state = self.read_shard(index, items)
        for run in self.runs:
            state = self.run_step(run, state)
        return state.rows, state.rejects

    def read_shard(self, index: int, items: list) -> ShardState:
        """The source's rows for one shard (cached like a stage's)."""
        fp = digest(self.source_fp, [(i.key, i.fingerprint) for i in items])
        rows, drops = self._cached_or(fp, SOURCE, index, len(items), lambda: self._read_source(items))
        self.notes[PLACEHOLDER_NOTE] += sum(1 for row in rows if row.get(PLACEHOLDERS_REMOVED))
        return ShardState(
            index, fp, rows, [_reject(d, SOURCE) for d in drops], {row["image_id"]: row["image"] for row in rows}
        )

    def run_step(self, run: StageRun, state: ShardState) -> ShardState:
        """One stage over one shard (from its cache entry when there is one)."""
        fp = digest(state.fp, run.fingerprint)
        rows, drops = self._cached_or(
            fp, run.params.label, state.index, len(state.rows), lambda: self._run_stage(run, state.rows), state.images
        )
        return ShardState(
            state.index,
            fp,
            rows,
            state.rejects + [_reject(d, run.params.label) for d in drops],
            state.images,
            state.reports,
        )

    def _cached_or(self, fp: str, label: str, shard: int, rows_in: int, compute, images: dict | None = None):
        """The cached output of ``label`` for a shard's ``rows_in`` input rows, or ``compute()``'s, then cached.
        ``compute`` reports its progress as it goes; a cache hit reports the whole shard at once."""
        self.used.append(fp)
        self.reporter.hand(label, rows_in)
        hit = self.cache.get(fp)
        if hit is not None:
            rows, drops = hit
            if images is not None:  # stage entries are stored without the source image
                rows = [{**row, "image": images[row["image_id"]]} for row in rows]
            self.cached[label] += 1
            self.reporter.advance(label, rows_in, len(rows), len(drops))
        else:
            start = time.perf_counter()
            rows, drops = compute()
            stored = rows if images is None else [{k: v for k, v in r.items() if k != "image"} for r in rows]
            self.cache.put(fp, stored, drops, stage=label, shard=shard)
            self.computed[label] += 1
            self.reporter.event(
                "stage_done",
                stage=label,
                shard=shard,
                rows_in=rows_in,
                rows=len(rows),
                drops=len(drops),
                seconds=round(time.perf_counter() - start, 4),
            )
        for d in drops:
            self.drops[d.reason] += 1
        return rows, drops

    def _read_source(self, items: list) -> tuple[list[Row], list[Drop]]:
        from prefgen.engine.sources import reader as sources

        out = sources.load_rows(self.recipe.source, items, self.base)
        rows, drops = [r for r in out if not isinstance(r, Drop)], [d for d in out if isinstance(d, Drop)]
        self.reporter.advance(SOURCE, len(items), len(rows), len(drops))
        return rows, drops

    def _engine_batch(self, run: StageRun, rows: int) -> int:
        """The batch a stage's engine does best with: vLLM schedules a whole shard's requests at once (continuous
        batching), prefgen's own loop prefers ``DEFAULT_BATCH`` rows. Rows never depend on it."""
        vlm = self.recipe.models.vlm
        if "vlm" in run.params.models and vlm is not None and vlm.engine == "vllm":
            return max(rows, 1)
        return DEFAULT_BATCH

    def _run_stage(self, run: StageRun, rows: list[Row]) -> tuple[list[Row], list[Drop]]:
        if not run.ready:
            run.stage.setup(self.models)
            run.ready = True
        kept, drops = [], []
        size = batch_size(run.params, self.options.batch_size, self._engine_batch(run, len(rows)))
        for start in range(0, len(rows), size):
            batch = rows[start : start + size]
            began = time.perf_counter()
            out = self._process(run, batch)
            run.seconds += time.perf_counter() - began
            run.seen += len(batch)
            dropped = [item for item in out if isinstance(item, Drop)]
            kept += [item for item in out if not isinstance(item, Drop)]
            drops += dropped
            self.reporter.advance(run.params.label, len(batch), len(out) - len(dropped), len(dropped))
            self._check_error_rate(run)
        return kept, drops

    def _process(self, run: StageRun, batch: list[Row]) -> list[Row | Drop]:
        """The stage's output for a batch; when the batch raises, each row is retried alone so that only the rows
        that really fail are rejected (with the error), and the build goes on."""
        try:
            return _checked(run, run.stage.process(batch))
        except PrefgenError:
            raise
        except Exception:
            out = []
            for row in batch:
                try:
                    out += _checked(run, run.stage.process([row]))
                except PrefgenError:
                    raise
                except Exception as exc:  # a data-dependent failure: reject the row, keep building
                    run.errors += 1
                    out.append(Drop(row, "stage_error", f"{type(exc).__name__}: {exc}"[:500]))
            return out

    def _check_error_rate(self, run: StageRun) -> None:
        limit = self.recipe.limits.max_error_rate
        if run.seen >= MIN_ROWS_FOR_ERROR_RATE and run.errors > limit * run.seen:
            raise PrefgenError(
                f"stage {run.params.label!r} failed on {run.errors} of {run.seen} rows (more than "
                f"limits.max_error_rate = {limit:g}); finished shards are kept, fix the cause and "
                "rerun the same command to continue"
            )


#: Rows per stage call when neither the stage nor the build says: small batches suit prefgen's own decoding loop.
DEFAULT_BATCH = 16


def batch_size(params: StageParams, build: int | None, engine_default: int = DEFAULT_BATCH) -> int:
    """Rows per call of a stage: its resources' batch size, else the build's, else the engine's choice."""
    return (params.resources.batch_size if params.resources else None) or build or engine_default


def _checked(run: StageRun, out: list) -> list[Row | Drop]:
    """A stage must return rows carrying a row_id and its declared columns, or Drops; anything else is its bug."""
    declared = run.params.output_columns()
    for item in out:
        if isinstance(item, Drop):
            continue
        if not isinstance(item, dict) or "row_id" not in item:
            raise PrefgenError(f"stage {run.params.label!r} returned {type(item).__name__}, not a row with a row_id")
        missing = [c for c in declared if c not in item]
        if missing:
            raise PrefgenError(f"stage {run.params.label!r} did not write its declared column(s) {', '.join(missing)}")
    return out


def _reject(drop: Drop, stage: str) -> dict:
    return {"row_id": str(drop.row.get("row_id")), "stage": stage, "reason": drop.reason, "detail": drop.detail}
