"""What every stage declares (its type name, the columns it reads and writes, the models it needs, a typed params
model), the contract its code implements (``Stage.setup`` and ``Stage.process``), and the templates most stages
are written on:

- ``RowStage``: one row at a time, no model (``process_row``).
- ``ModelStage``: a batch of rows for a model. The template decodes each row's image once, checks its question and
  its one-or-many answer cell, turns what fails into counted ``Drop``s, hands the rest to ``run`` as ``Item``s
  (row, image, question, answers, seed) and puts the results back in input order. A stage writes only what it asks
  the model and what it makes of the outputs.

A stage's params model *is* its recipe entry: ``- type: answer`` followed by the params as plain keys. A stage
module declares ``XParams(StageParams)``, implements ``X(ModelStage)`` (or ``RowStage``, or ``Stage``), and links
them with ``XParams.runtime = X``. Heavy modules (PIL, torch) load only when a stage runs, so declaring stages, which
is all `prefgen validate` needs, stays light.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from prefgen.core.config import StrictModel
from prefgen.models.images import decode_image

if TYPE_CHECKING:
    from PIL import Image


class Resources(StrictModel):
    """Where and how wide a stage runs on a Ray cluster (`prefgen build --executor ray`). None of it changes the
    rows a stage writes, so none of it is part of the cache key or the recipe's fingerprint."""

    num_gpus: float | None = Field(
        None, ge=0, description="GPUs each worker of this stage reserves (fractions share a GPU). Default 0."
    )
    num_cpus: float | None = Field(
        None,
        gt=0,
        description="CPUs each worker reserves, and the torch threads it uses. "
        "Default: an equal share of the cluster's CPUs per stage and worker.",
    )
    concurrency: int | None = Field(
        None,
        ge=1,
        description="Workers of this stage: actors for a stage with a model "
        "(each loads the model once), tasks at most for one without. Default: "
        "`--workers`, else the cluster's CPU count.",
    )
    batch_size: int | None = Field(
        None, ge=1, description="Rows per call of the stage, on every executor (default `--batch-size`)."
    )


class StageParams(StrictModel):
    """Fields every stage accepts, and the class-level declarations the validator checks."""

    name: str | None = Field(
        None,
        pattern=r"^[a-z][a-z0-9_]{0,47}$",
        description="Label of this stage in logs, caches and rejects; must be unique in the recipe. "
        "Defaults to the type.",
    )
    resources: Resources | None = Field(
        None,
        description="How this stage runs on a Ray cluster (workers, CPUs, GPUs) and its batch size; where the "
        "work runs never changes the rows, so it is left out of the cache key.",
    )

    #: Columns the stage needs from the source or an earlier stage.
    reads: ClassVar[tuple[str, ...]] = ()
    #: Columns the stage adds (or replaces).
    writes: ClassVar[tuple[str, ...]] = ()
    #: Entries of the recipe's ``models`` section the stage uses (``vlm``, ``clip``).
    models: ClassVar[tuple[str, ...]] = ()
    #: Params added after stores were first built: left out of the recipe's fingerprint while at their defaults,
    #: so that recipes written before them keep their fingerprints.
    later_keys: ClassVar[tuple[str, ...]] = ()
    #: The code that runs the stage; None while only the declaration exists.
    runtime: ClassVar[type["Stage"] | None] = None

    @classmethod
    def stage_type(cls) -> str:
        return cls.model_fields["type"].default

    @property
    def label(self) -> str:
        return self.name or self.stage_type()

    def input_columns(self) -> list[str]:
        """Columns read; stages whose inputs depend on params override this."""
        return list(self.reads)

    def output_columns(self) -> list[str]:
        """Columns written; stages whose outputs depend on params override this."""
        return list(self.writes)

    def engine_problem(self, engine: str) -> tuple[str, str] | None:
        """(param, why) when these params ask the VLM ``engine`` for something it cannot do; checked by ``prefgen
        validate``, ``build --plan`` and the build before any model loads."""
        return None


# ---------------------------------------------------------------------------------------------------- running

#: One row flowing through the stages: column name -> value. ``row_id`` identifies it (unique within a build).
Row = dict


@dataclass(frozen=True)
class Drop:
    """A row a stage removes, with the reason (counted in the manifest and kept in the version's rejects)."""

    row: Row
    reason: str  # short, stable, snake_case: counted by this
    detail: str = ""  # free text for a human: the error message, the offending value...


class Stage:
    """The code that runs a stage: ``setup`` once per worker, then ``process`` on batches of rows.

    ``process`` returns, for its input rows, the rows that go on (updated with the stage's output columns, possibly
    several per input row) and ``Drop``s for the rows it removes. It must not write files, and its results must
    depend only on each row and ``self.seed_for(row)``, never on how rows were batched: that is what makes builds
    reproducible across batch sizes and resumable after a crash.
    """

    def __init__(self, params: StageParams, seed: int):
        self.params = params
        self.seed = seed

    def setup(self, models) -> None:
        """Load what the stage needs; called once before the first batch. ``models`` has the recipe's models as
        attributes, loaded on first use (the engine's ``RecipeModels``); by default each model the params declare is
        bound (``self.vlm``, ``self.clip``)."""
        for name in self.params.models:
            setattr(self, name, getattr(models, name))

    def process(self, rows: list[Row]) -> list[Row | Drop]:
        raise NotImplementedError

    def seed_for(self, row: Row) -> int:
        """A seed for this row in this stage: the same whatever the batch or shard the row lands in."""
        key = f"{self.seed}:{self.params.label}:{row['row_id']}".encode()
        return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") >> 1


class RowStage(Stage):
    """A stage that looks at one row at a time and needs no model: write ``process_row``."""

    def process_row(self, row: Row) -> Row | Drop | list[Row | Drop]:
        raise NotImplementedError

    def process(self, rows: list[Row]) -> list[Row | Drop]:
        out: list[Row | Drop] = []
        for row in rows:
            result = self.process_row(row)
            out.extend(result if isinstance(result, list) else [result])
        return out


# ---------------------------------------------------------------------------------------------------- model stages


@dataclass
class Item:
    """One row ready for a model: its decoded image, its question and its answers, checked by the template."""

    row: Row
    seed: int
    image: Image.Image | None = None
    question: str | None = None
    #: The answer cell's texts as a list (None for a missing candidate); ``many`` says the cell was a list.
    answers: list[str | None] = field(default_factory=list)
    many: bool = False

    def shaped(self, values: list) -> Any:
        """``values`` (one per answer) shaped like the answer cell: the list itself, or its only element."""
        return list(values) if self.many else values[0]

    def update(self, **columns: Any) -> Row:
        """The row with ``columns`` added or replaced."""
        return {**self.row, **columns}


class ModelStage(Stage):
    """The template of stages that put each row to a model. What it checks follows the declared input columns:

    - ``image``: decoded and prepared once per row (``undecodable_image`` drops it); ``image_for`` may transform it.
    - ``question``: a non-empty string (``missing_question``).
    - the answer column (``answers_column()``, when the stage has one): one text, or a list of texts where ``None``
      marks a missing candidate (``missing_column`` otherwise); results go back in the same shape (``Item.shaped``).

    Checks run in that order, cheapest first. ``run`` gets the ready items of a batch, in order, and returns one
    result per item: the updated row, a ``Drop``, or a list of rows (a stage that fans out).
    """

    def answers_column(self) -> str | None:
        """The column holding one answer or a list of them, if the stage reads one."""
        return None

    def image_for(self, row: Row, image: Image.Image) -> Image.Image | Drop:
        """The image the model sees for this row (``answer_corrupted`` recreates the corrupted one)."""
        return image

    def run(self, items: list[Item]) -> list[Row | Drop | list[Row | Drop]]:
        raise NotImplementedError

    def process(self, rows: list[Row]) -> list[Row | Drop]:
        checked = [self.item_for(row) for row in rows]
        ready = [item for item in checked if isinstance(item, Item)]
        results = iter(self.run(ready) if ready else [])
        out: list[Row | Drop] = []
        for item in checked:
            result = next(results) if isinstance(item, Item) else item
            out.extend(result if isinstance(result, list) else [result])
        return out

    def item_for(self, row: Row) -> Item | Drop:
        reads = self.params.input_columns()
        item = Item(row, self.seed_for(row))
        column = self.answers_column()
        if column is not None:
            answers = answer_list(row.get(column))
            if answers is None:
                detail = f"{column} is not a text or a list of texts: {row.get(column)!r}"
                return Drop(row, "missing_column", detail[:500])
            item.answers, item.many = answers, isinstance(row.get(column), (list, tuple))
        if "question" in reads:
            question = row.get("question")
            if not isinstance(question, str) or not question.strip():
                return Drop(row, "missing_question", f"question: {question!r}")
            item.question = question
        if "image" in reads:
            image = decoded_image(row)
            if isinstance(image, Drop):
                return image
            image = self.image_for(row, image)
            if isinstance(image, Drop):
                return image
            item.image = image
        return item


def answer_list(cell) -> list[str | None] | None:
    """The texts of a one-or-many cell: ``[text]`` for a string; a non-empty list of strings (or ``None`` for a
    missing candidate) as it is; ``None`` for anything else."""
    if isinstance(cell, str):
        return [cell]
    if isinstance(cell, (list, tuple)) and cell and all(a is None or isinstance(a, str) for a in cell):
        return list(cell)
    return None


def decoded_image(row: Row) -> Image.Image | Drop:
    """The row's source image, decoded and prepared as the models see it, or the Drop saying why it cannot be."""
    try:
        return decode_image(row.get("image"))
    except Exception as error:  # any decoder failure is a property of the data, not a bug here
        return Drop(row, "undecodable_image", f"{type(error).__name__}: {error}"[:500])


# ---------------------------------------------------------------------------------------------------- generation


def generate(
    vlm,
    prompts: list,
    seeds: Sequence[int] | None = None,
    *,
    n: int = 1,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    stop: Sequence[str] = (),
) -> list[list[str]]:
    """``n`` cleaned texts per prompt from one batched call. Greedy when ``temperature`` is 0; sampling draws from
    each prompt's own seed (a stage's per-row seed), so a text does not depend on the batch it was generated in."""
    if not prompts:
        return []
    if temperature > 0 and seeds is None:
        raise ValueError("sampling needs one seed per prompt")
    found = vlm.generate(
        prompts,
        n=n,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        stop=list(stop),
        seed=list(seeds) if seeds is not None else None,
    )
    return [[clean(candidate.text, stop) for candidate in candidates] for candidates in found]


def clean(text: str, stop: Sequence[str] = ()) -> str:
    """Generated text as stored: cut at the first stop string (the runtime keeps it, as transformers does, and may
    keep the rest of its last token too), without surrounding whitespace."""
    cuts = [text.find(s) for s in stop if s and s in text]
    return (text[: min(cuts)] if cuts else text).strip()


def fill(template: str, **values: str) -> str:
    """``template`` with each ``{name}`` replaced. Plain replacement, not ``str.format``: a user's template may hold
    other braces, and an answer or caption may hold anything."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template
