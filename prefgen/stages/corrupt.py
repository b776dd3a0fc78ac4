"""Seeded, reproducible image corruptions for rejected answers: the diffusion-noise schedule shared by SeVa, SENA
and POVID (step t, with the space it is applied in made explicit), albumentations ops, and mDPO's small random
crop. Ops are applied in order. The corrupted image is recreated from (ops, seed) when needed, not stored,
unless ``store_images`` is set.

Reads ``image`` and ``image_id``; writes ``corruption`` (a JSON description of ops and seed).
"""

from typing import Annotated, ClassVar, Literal, Union

from pydantic import Field

from prefgen.stages.base import StageParams, StrictModel


class DiffusionNoise(StrictModel):
    op: Literal["diffusion_noise"] = "diffusion_noise"
    t: int = Field(600, ge=0, le=999, description="Step of the 1000-step sigmoid schedule (SeVa 500/800, SENA 600).")
    space: Literal["pixel", "normalized"] = Field(
        "pixel", description="Add noise to [0,1] pixels, or to the processor-normalised tensor as SENA does."
    )


class GaussianNoise(StrictModel):
    op: Literal["gaussian_noise"] = "gaussian_noise"
    std_range: tuple[float, float] = Field((0.1, 0.2), description="Noise std as a fraction of the maximum value.")


class GaussianBlur(StrictModel):
    op: Literal["gaussian_blur"] = "gaussian_blur"
    blur_limit: tuple[int, int] = Field((3, 7), description="Kernel size range (odd).")
    sigma_limit: tuple[float, float] = Field((0.5, 2.0), description="Sigma range.")


class Jpeg(StrictModel):
    op: Literal["jpeg"] = "jpeg"
    quality_range: tuple[int, int] = Field((10, 30), description="JPEG quality range.")


class ColorJitter(StrictModel):
    op: Literal["color_jitter"] = "color_jitter"
    brightness: float = Field(0.4, ge=0.0)
    contrast: float = Field(0.4, ge=0.0)
    saturation: float = Field(0.4, ge=0.0)
    hue: float = Field(0.1, ge=0.0, le=0.5)


class RandomResizedCrop(StrictModel):
    op: Literal["random_resized_crop"] = "random_resized_crop"
    scale: tuple[float, float] = Field((0.01, 0.2), description="Area fraction kept (mDPO: 0.01-0.2).")


CorruptionOp = Annotated[
    Union[DiffusionNoise, GaussianNoise, GaussianBlur, Jpeg, ColorJitter, RandomResizedCrop], Field(discriminator="op")
]


class CorruptParams(StageParams):
    """Describe (and optionally store) a corrupted copy of each image."""

    type: Literal["corrupt"] = "corrupt"
    ops: list[CorruptionOp] = Field(
        default_factory=lambda: [DiffusionNoise()], min_length=1, description="Corruptions applied in order."
    )
    store_images: bool = Field(False, description="Also store the corrupted image in `corrupted_image`.")

    reads: ClassVar = ("image", "image_id")

    def output_columns(self) -> list[str]:
        return ["corruption", "corrupted_image"] if self.store_images else ["corruption"]
