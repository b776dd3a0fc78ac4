"""A reward made of weighted score columns, per candidate: CSR's calibrated reward ``lam * R_img + (1 - lam) *
R_text`` is ``terms: {answers_clip: 0.9, answers_logp: 0.1}``. Scores on different scales can be z-scored among a
row's candidates first (``normalize: zscore``), so the weights mean what they say; a single score is left as it is.

Reads the term columns (floats, or lists aligned with a candidate list); writes ``output`` (same shape). A candidate
missing any term gets None, which ``select_pairs`` never picks as best or worst.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from prefgen.stages.base import Row, RowStage, StageParams


class RewardMixParams(StageParams):
    """Weighted sum of score columns (optionally z-scored per row)."""

    type: Literal["reward_mix"] = "reward_mix"
    terms: dict[str, float] = Field(..., min_length=1, description="Score column -> weight.")
    normalize: Literal["none", "zscore"] = Field("none", description="z-score each term among a row's candidates.")
    output: str = Field("reward", pattern=r"^[a-z][a-z0-9_]*$", description="Column for the mixed reward.")

    def input_columns(self) -> list[str]:
        return list(self.terms)

    def output_columns(self) -> list[str]:
        return [self.output]


def zscore(values: list[float | None]) -> list[float | None]:
    known = [v for v in values if v is not None]
    if len(known) < 2:
        return [0.0 if v is not None else None for v in values]
    mean = sum(known) / len(known)
    std = math.sqrt(sum((v - mean) ** 2 for v in known) / len(known))
    return [None if v is None else ((v - mean) / std if std > 0 else 0.0) for v in values]


class RewardMix(RowStage):
    params: RewardMixParams

    def process_row(self, row: Row) -> Row:
        return {**row, self.params.output: self.mix(row)}

    def mix(self, row: Row):
        p = self.params
        cells = {name: row.get(name) for name in p.terms}
        listed = [c for c in cells.values() if isinstance(c, list)]
        size = len(listed[0]) if listed else None
        columns = {name: (cell if isinstance(cell, list) else [cell] * (size or 1)) for name, cell in cells.items()}
        if any(len(values) != (size or 1) for values in columns.values()):
            return None if size is None else [None] * size
        columns = {name: [_number(v) for v in values] for name, values in columns.items()}
        if p.normalize == "zscore" and size is not None:
            columns = {name: zscore(values) for name, values in columns.items()}
        mixed = [
            None if any(columns[n][k] is None for n in columns) else sum(p.terms[n] * columns[n][k] for n in columns)
            for k in range(size or 1)
        ]
        return mixed if size is not None else mixed[0]


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


RewardMixParams.runtime = RewardMix
