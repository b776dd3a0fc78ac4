"""Seeded, reproducible image corruptions for rejected answers: the diffusion-noise schedule shared by SeVa, SENA
and POVID (step t, with the space it is applied in made explicit), albumentations ops, and mDPO's small random
crop. Ops are applied in order, or (``choose: one``) one op drawn per row from the row's seed, so that rejected
answers err in more than one direction (noise makes a VLM see more objects, a crop fewer). The corrupted image
is recreated from (ops, seed) when needed, not stored, unless ``store_images`` is set.

Reads ``image`` and ``image_id``; writes ``corruption``, a JSON ``{"ops": [...], "seed": <int>}`` that
``apply_corruption`` turns back into the same pixels (and ``corrupted_image``, a PNG, with ``store_images``).
The ops are declared in ``ops`` and applied by ``pixels``.
"""

from __future__ import annotations

import random
from typing import ClassVar, Literal

from pydantic import Field

from prefgen.stages.base import Drop, Row, RowStage, StageParams, decoded_image
from prefgen.stages.corrupt.ops import CorruptionOp, DiffusionNoise
from prefgen.stages.corrupt.pixels import apply_corruption, check_ops, describe_corruption, encode_png


class CorruptParams(StageParams):
    """Describe (and optionally store) a corrupted copy of each image."""

    type: Literal["corrupt"] = "corrupt"
    ops: list[CorruptionOp] = Field(
        default_factory=lambda: [DiffusionNoise()],
        min_length=1,
        description="Corruptions applied in order; op i draws its randomness from the row's seed + i.",
    )
    choose: Literal["all", "one"] = Field(
        "all",
        description="`all`: every op, in order. `one`: one op per row, drawn uniformly from the row's seed (a "
        "rejected answer whose error has no fixed direction: diffusion noise adds objects the VLM sees, a crop "
        "removes them).",
    )
    store_images: bool = Field(False, description="Also store the corrupted image (PNG) in `corrupted_image`.")

    reads: ClassVar = ("image", "image_id")
    later_keys: ClassVar = ("choose",)

    def output_columns(self) -> list[str]:
        return ["corruption", "corrupted_image"] if self.store_images else ["corruption"]


class Corrupt(RowStage):
    params: CorruptParams

    def setup(self, models) -> None:
        check_ops(self.params.ops)  # a parameter albumentations rejects fails here, before the first row

    def process_row(self, row: Row) -> Row | Drop:
        image = decoded_image(row)
        if isinstance(image, Drop):
            return image
        seed, ops = self.seed_for(row), self.params.ops
        if self.params.choose == "one":
            ops = [ops[random.Random(seed).randrange(len(ops))]]
        corruption = describe_corruption(ops, seed)
        if not self.params.store_images:
            return {**row, "corruption": corruption}
        corrupted = {"bytes": encode_png(apply_corruption(image, corruption)), "path": None}
        return {**row, "corruption": corruption, "corrupted_image": corrupted}


CorruptParams.runtime = Corrupt
