"""The corruption ops a recipe can name (``corrupt`` stage, mDPO crops): their declarations only, so validating a
recipe never imports numpy, PIL or albumentations. ``pixels`` holds the code that applies them.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from prefgen.core.config import StrictModel


class _Op(StrictModel):
    @model_validator(mode="after")
    def _ranges_ordered(self):
        for name, value in self:
            if isinstance(value, tuple) and value[0] > value[1]:
                raise ValueError(f"{name} must be (low, high) with low <= high, got {value}")
        return self


def _bounded(kind: type, low: float, high: float):
    return Annotated[kind, Field(ge=low, le=high)]


class DiffusionNoise(_Op):
    op: Literal["diffusion_noise"] = "diffusion_noise"
    t: int = Field(600, ge=0, le=999, description="Step of the 1000-step sigmoid schedule (SeVa 500/800, SENA 600).")
    space: Literal["pixel", "normalized"] = Field(
        "pixel",
        description="`pixel`: noise on [0,1] pixels (POVID). `normalized`: noise on the CLIP-normalised image, as "
        "SeVa/SENA add it to the processor's tensor, mapped back to pixels and clipped; the VLM re-normalises it, "
        "and its processor's resize averages the noise down on images larger than the vision input.",
    )


class GaussianNoise(_Op):
    op: Literal["gaussian_noise"] = "gaussian_noise"
    std_range: tuple[_bounded(float, 0, 1), _bounded(float, 0, 1)] = Field(
        (0.1, 0.2), description="Noise std as a fraction of the maximum value."
    )


class GaussianBlur(_Op):
    op: Literal["gaussian_blur"] = "gaussian_blur"
    blur_limit: tuple[_bounded(int, 0, 255), _bounded(int, 0, 255)] = Field(
        (3, 7), description="Kernel size range (odd; 0 = derived from sigma)."
    )
    sigma_limit: tuple[Annotated[float, Field(gt=0, le=100)], Annotated[float, Field(gt=0, le=100)]] = Field(
        (0.5, 2.0), description="Sigma range (sigma 0 gives NaN kernels in albumentations)."
    )

    @model_validator(mode="after")
    def _odd_kernels(self):
        # albumentations silently adjusts even sizes; say so here instead
        if any(size != 0 and (size < 3 or size % 2 == 0) for size in self.blur_limit):
            raise ValueError(
                f"blur_limit sizes must be odd and >= 3, or 0 to derive them from sigma; got {self.blur_limit}"
            )
        return self


class Jpeg(_Op):
    op: Literal["jpeg"] = "jpeg"
    quality_range: tuple[_bounded(int, 1, 100), _bounded(int, 1, 100)] = Field(
        (10, 30), description="JPEG quality range."
    )


class ColorJitter(_Op):
    op: Literal["color_jitter"] = "color_jitter"
    brightness: float = Field(0.4, ge=0.0, description="Brightness factor drawn from [1 - b, 1 + b].")
    contrast: float = Field(0.4, ge=0.0, description="Contrast factor drawn from [1 - c, 1 + c].")
    saturation: float = Field(0.4, ge=0.0, description="Saturation factor drawn from [1 - s, 1 + s].")
    hue: float = Field(0.1, ge=0.0, le=0.5, description="Hue shift drawn from [-h, h] (fraction of the hue circle).")


class RandomResizedCrop(_Op):
    op: Literal["random_resized_crop"] = "random_resized_crop"
    scale: tuple[_bounded(float, 1e-4, 1), _bounded(float, 1e-4, 1)] = Field(
        (0.01, 0.2), description="Area fraction kept, resized back to the input size (mDPO: 0.01-0.2)."
    )


CorruptionOp = Annotated[
    Union[DiffusionNoise, GaussianNoise, GaussianBlur, Jpeg, ColorJitter, RandomResizedCrop], Field(discriminator="op")
]
