"""The code behind the ``corrupt`` stage's ops, apart from the declaration so that `prefgen validate` never imports
numpy, PIL or albumentations.

A corruption is described by ``{"ops": [...], "seed": s}``; ``apply_corruption`` turns an image and that
description into the corrupted image, always the same pixels for the same description. Op ``i`` draws its randomness
from seed ``s + i`` alone: appending an op leaves the earlier ops' pixels as they were, and no op depends on how
much randomness another one consumed. Each op gets a fresh generator (albumentations: a fresh ``A.Compose`` with
that seed) because a ``Compose`` built once advances its RNG on every call and would not repeat itself.
"""

from __future__ import annotations

import io
import json
from functools import lru_cache

import numpy as np
from PIL import Image
from pydantic import TypeAdapter

from prefgen.models.images import prepare_image
from prefgen.stages.corrupt.ops import CorruptionOp, DiffusionNoise, RandomResizedCrop

NUM_STEPS = 1000
# CLIP's normalisation, which LLaVA-1.5 (SeVa, SENA) applies before the vision tower.
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

_OPS = TypeAdapter(list[CorruptionOp])


# ---------------------------------------------------------------------------------------------- description


def describe_corruption(ops: list, seed: int) -> str:
    """The JSON stored in the ``corruption`` column: every op field (defaults included, so a later change of a
    default cannot change how an old row is recreated) and the row's seed."""
    return json.dumps({"ops": _OPS.dump_python(list(ops), mode="json"), "seed": int(seed)}, separators=(",", ":"))


def parse_corruption(corruption: str | dict) -> tuple[list, int]:
    """(validated ops, seed) from a ``corruption`` value; a malformed one raises ``ValueError`` saying why."""
    data = json.loads(corruption) if isinstance(corruption, str) else corruption
    if not isinstance(data, dict) or set(data) != {"ops", "seed"} or not isinstance(data["seed"], int):
        raise ValueError(f"a corruption is {{'ops': [...], 'seed': <int>}}, got {corruption!r}")
    return _OPS.validate_python(data["ops"]), data["seed"]


# ---------------------------------------------------------------------------------------------- applying


def apply_corruption(image: Image.Image, corruption: str | dict) -> Image.Image:
    """The corrupted copy of ``image`` that ``corruption`` describes; same description, same pixels.

    The image is first brought upright, to RGB and under the pixel cap (``prepare_image``), as the VLM would see
    it: callers may pass the raw decoded source image and still get the pixels the ``corrupt`` stage stored.
    """
    ops, seed = parse_corruption(corruption)
    image = prepare_image(image)
    for index, op in enumerate(ops):
        op_seed = seed + index
        if isinstance(op, DiffusionNoise):
            image = _apply_diffusion_noise(image, op, op_seed)
        else:
            image = _apply_albumentation(image, op, op_seed)
    return image


def encode_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------- diffusion noise


@lru_cache(maxsize=1)
def _alphas_cumprod() -> np.ndarray:
    """ᾱ_t of the sigmoid schedule the SeVa / SENA / POVID code shares (1000 steps, β from 1e-5 to 5e-3)."""
    betas = 1.0 / (1.0 + np.exp(-np.linspace(-6.0, 6.0, NUM_STEPS)))
    betas = betas * (5e-3 - 1e-5) + 1e-5
    return np.cumprod(1.0 - betas)


def noise_strength(t: int) -> tuple[float, float]:
    """(√ᾱ_t, √(1−ᾱ_t)): how much of the image and how much unit Gaussian noise step ``t`` keeps."""
    if not 0 <= t < NUM_STEPS:
        raise ValueError(f"diffusion step t must be in [0, {NUM_STEPS - 1}], got {t}")
    abar = float(_alphas_cumprod()[t])
    return abar**0.5, (1.0 - abar) ** 0.5


def diffusion_noise_array(pixels: np.ndarray, t: int, space: str, seed: int) -> np.ndarray:
    """x_t = √ᾱ·x0 + √(1−ᾱ)·ε for ``pixels`` in [0, 1] (H, W, 3), returned in pixel units and *not clipped*.

    ``space="normalized"`` adds the noise to (pixels − mean) / std with CLIP's statistics, as SeVa and SENA do on
    the processor's tensor, then maps back with x·std + mean, so per channel the noise is std-times smaller in
    pixel units than in ``space="pixel"`` (POVID). ε is drawn in (H, W, 3) order from ``default_rng(seed)``.
    """
    keep, noise = noise_strength(t)
    eps = np.random.default_rng(seed).standard_normal(pixels.shape, dtype=np.float32)
    if space == "pixel":
        return keep * pixels + noise * eps
    if space == "normalized":
        mean = np.asarray(OPENAI_CLIP_MEAN, dtype=np.float32)
        std = np.asarray(OPENAI_CLIP_STD, dtype=np.float32)
        noisy = keep * ((pixels - mean) / std) + noise * eps
        return noisy * std + mean
    raise ValueError(f"unknown noise space {space!r}; use 'pixel' or 'normalized'")


def _apply_diffusion_noise(image: Image.Image, op: DiffusionNoise, seed: int) -> Image.Image:
    # The VLM's processor will resize and re-normalise this image; clipping to [0, 1] and rounding to 8 bits is the
    # price of storing SENA's normalised-tensor noise as an image (see the `space` field's description).
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    noisy = diffusion_noise_array(pixels, op.t, op.space, seed)
    return Image.fromarray(np.rint(np.clip(noisy, 0.0, 1.0) * 255.0).astype(np.uint8))


# ---------------------------------------------------------------------------------------------- albumentations


def _albumentation(op, height: int, width: int):
    """The albumentations 2.x transform for an op (always applied: p=1)."""
    import albumentations as A

    if isinstance(op, RandomResizedCrop):  # mDPO: keep a small area and resize it back to the input size
        return A.RandomResizedCrop(size=(height, width), scale=tuple(op.scale), p=1.0)
    if op.op == "gaussian_noise":
        return A.GaussNoise(std_range=tuple(op.std_range), mean_range=(0.0, 0.0), p=1.0)
    if op.op == "gaussian_blur":
        return A.GaussianBlur(blur_limit=tuple(op.blur_limit), sigma_limit=tuple(op.sigma_limit), p=1.0)
    if op.op == "jpeg":
        return A.ImageCompression(quality_range=tuple(op.quality_range), compression_type="jpeg", p=1.0)
    if op.op == "color_jitter":
        return A.ColorJitter(
            brightness=op.brightness, contrast=op.contrast, saturation=op.saturation, hue=op.hue, p=1.0
        )
    raise ValueError(f"no albumentations transform for op {op.op!r}")


def _apply_albumentation(image: Image.Image, op, seed: int) -> Image.Image:
    import albumentations as A

    pixels = np.asarray(image)
    # A Compose seeds its own numpy and Python generators (and its transforms') from `seed`, and touches neither
    # global RNG; a fresh one per call is what makes the result repeat.
    transform = A.Compose([_albumentation(op, *pixels.shape[:2])], seed=seed)
    return Image.fromarray(np.ascontiguousarray(transform(image=pixels)["image"]))


def check_ops(ops: list) -> None:
    """Build each albumentations transform once, so parameters it rejects fail before any row is processed."""
    for op in ops:
        if not isinstance(op, DiffusionNoise):
            _albumentation(op, 64, 64)
