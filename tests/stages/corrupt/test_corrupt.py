"""The `corrupt` stage: seeded corruptions that recreate bit-identically from their JSON description."""

import io
import json
import random
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from prefgen.stages.base import Drop
from prefgen.stages.corrupt.ops import Jpeg
from prefgen.stages.corrupt.pixels import OPENAI_CLIP_STD, apply_corruption, diffusion_noise_array, noise_strength
from prefgen.stages.corrupt.stage import Corrupt, CorruptParams

ALBUMENTATIONS_OPS = [
    {"op": "gaussian_noise"},
    {"op": "gaussian_blur"},
    {"op": "jpeg"},
    {"op": "color_jitter"},
    {"op": "random_resized_crop"},
]


def textured(width: int = 48, height: int = 32) -> Image.Image:
    """A busy picture, so blur, JPEG and crops all visibly change it."""
    pixels = np.random.default_rng(7).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    pixels[:, : width // 2] //= 3  # a dark half, so a crop changes more than the noise texture
    return Image.fromarray(pixels)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def row(row_id: str, image: Image.Image | None = None) -> dict:
    image_cell = {"bytes": png(image or textured()), "path": "a.png"}
    return {"row_id": row_id, "image_id": f"img-{row_id}", "image": image_cell}


def corrupt(ops: list[dict], image: Image.Image | None = None, seed: int = 3) -> np.ndarray:
    return np.asarray(apply_corruption(image or textured(), {"ops": ops, "seed": seed}))


# ---------------------------------------------------------------------------------------------- diffusion noise


@pytest.mark.parametrize(("t", "keep", "noise"), [(500, 0.863, 0.505), (600, 0.734, 0.679), (800, 0.467, 0.884)])
def test_noise_strengths_match_the_shared_schedule(t, keep, noise):
    sqrt_abar, sqrt_one_minus_abar = noise_strength(t)
    assert sqrt_abar == pytest.approx(keep, abs=1e-3)
    assert sqrt_one_minus_abar == pytest.approx(noise, abs=1e-3)


def test_noise_strength_rejects_steps_outside_the_schedule():
    with pytest.raises(ValueError, match=r"\[0, 999\], got 1000"):
        noise_strength(1000)


def test_pixel_space_noise_is_unit_gaussian_scaled_by_the_schedule():
    gray = np.full((64, 64, 3), 0.5, dtype=np.float32)
    keep, noise = noise_strength(500)
    residual = diffusion_noise_array(gray, 500, "pixel", seed=11) - keep * gray
    assert residual.mean() == pytest.approx(0.0, abs=0.02)
    assert residual.std() == pytest.approx(noise, rel=0.02)


def test_normalized_space_noise_is_scaled_by_clip_std_per_channel():
    gray = np.full((64, 64, 3), 0.5, dtype=np.float32)
    _, noise = noise_strength(600)
    noisy = diffusion_noise_array(gray, 600, "normalized", seed=11)
    for channel, std in enumerate(OPENAI_CLIP_STD):
        assert noisy[..., channel].std() == pytest.approx(noise * std, rel=0.03)


def test_normalized_and_pixel_space_give_different_images():
    gray = Image.new("RGB", (64, 64), (128, 128, 128))
    pixel = corrupt([{"op": "diffusion_noise", "t": 600, "space": "pixel"}], gray).astype(float)
    normalized = corrupt([{"op": "diffusion_noise", "t": 600, "space": "normalized"}], gray).astype(float)
    assert not np.array_equal(pixel, normalized)
    # Normalised-space noise is about 0.27 (CLIP's std) times as strong in pixel units.
    assert normalized.std() < 0.5 * pixel.std()


def test_diffusion_noise_is_reproducible_and_seed_dependent():
    ops = [{"op": "diffusion_noise", "t": 500}]
    assert np.array_equal(corrupt(ops, seed=1), corrupt(ops, seed=1))
    assert not np.array_equal(corrupt(ops, seed=1), corrupt(ops, seed=2))


# ---------------------------------------------------------------------------------------------- albumentations ops


@pytest.mark.parametrize("op", ALBUMENTATIONS_OPS, ids=lambda op: op["op"])
def test_albumentations_op_changes_the_image_and_repeats_exactly(op):
    original = np.asarray(textured())
    first, second = corrupt([op], seed=5), corrupt([op], seed=5)
    assert first.shape == original.shape
    assert not np.array_equal(first, original)
    assert np.array_equal(first, second)


@pytest.mark.parametrize("op", [o for o in ALBUMENTATIONS_OPS if o["op"] != "jpeg"], ids=lambda op: op["op"])
def test_albumentations_op_depends_on_the_seed(op):
    # (jpeg is left out: two seeds may draw the same quality, and the encoder itself is deterministic)
    assert not np.array_equal(corrupt([op], seed=5), corrupt([op], seed=6))


def test_random_resized_crop_keeps_a_non_square_size():
    image = textured(width=50, height=20)
    out = apply_corruption(image, {"ops": [{"op": "random_resized_crop", "scale": [0.01, 0.2]}], "seed": 9})
    assert out.size == (50, 20)


def test_op_i_uses_seed_plus_i_so_appending_an_op_keeps_the_earlier_ones():
    noise, jpeg = {"op": "gaussian_noise"}, {"op": "jpeg", "quality_range": [20, 20]}
    both = corrupt([noise, jpeg], seed=40)
    step_by_step = corrupt([jpeg], Image.fromarray(corrupt([noise], seed=40)), seed=41)
    assert np.array_equal(both, step_by_step)


def test_corrupting_leaves_the_global_random_generators_alone():
    np.random.seed(0)
    random.seed(0)
    numpy_state, python_state = np.random.get_state()[1].copy(), random.getstate()
    corrupt([{"op": "diffusion_noise"}, *ALBUMENTATIONS_OPS])
    assert np.array_equal(np.random.get_state()[1], numpy_state)
    assert random.getstate() == python_state


def test_malformed_description_is_an_error_saying_what_is_expected():
    with pytest.raises(ValueError, match="'ops'"):
        apply_corruption(textured(), {"ops": [{"op": "jpeg"}]})


def test_params_reject_reversed_ranges():
    with pytest.raises(ValueError, match="quality_range must be \\(low, high\\)"):
        CorruptParams(ops=[{"op": "jpeg", "quality_range": [30, 10]}])


def test_params_reject_even_blur_kernels():
    with pytest.raises(ValueError, match="blur_limit sizes must be odd"):
        CorruptParams(ops=[{"op": "gaussian_blur", "blur_limit": [4, 4]}])


# ---------------------------------------------------------------------------------------------- the stage


def test_corruption_column_describes_ops_and_row_seed():
    stage = Corrupt(CorruptParams(ops=[{"op": "diffusion_noise", "t": 500}, {"op": "jpeg"}]), seed=0)
    [out] = stage.process([row("r1")])
    assert json.loads(out["corruption"]) == {
        "ops": [{"op": "diffusion_noise", "t": 500, "space": "pixel"}, {"op": "jpeg", "quality_range": [10, 30]}],
        "seed": stage.seed_for(out),
    }
    assert "corrupted_image" not in out
    assert out["image_id"] == "img-r1"  # input columns pass through


def test_choose_one_draws_one_op_per_row_from_its_seed():
    ops = [{"op": "diffusion_noise", "t": 600}, {"op": "random_resized_crop", "scale": (0.3, 0.6)}]
    stage = Corrupt(CorruptParams(ops=ops, choose="one"), seed=0)
    rows = [row(f"r{i}") for i in range(40)]
    out = stage.process(rows)
    drawn = [json.loads(r["corruption"]) for r in out]
    assert all(len(d["ops"]) == 1 for d in drawn)
    kinds = [d["ops"][0]["op"] for d in drawn]
    assert 10 <= kinds.count("diffusion_noise") <= 30 and set(kinds) == {"diffusion_noise", "random_resized_crop"}
    assert stage.process(rows) == out  # the draw is the row's, not the run's
    every = Corrupt(CorruptParams(ops=ops), seed=0).process(rows[:1])
    assert len(json.loads(every[0]["corruption"])["ops"]) == 2  # the default applies them all


def test_stored_image_is_recreated_from_the_corruption_json():
    stage = Corrupt(
        CorruptParams(
            ops=[{"op": "diffusion_noise", "t": 600, "space": "normalized"}, {"op": "random_resized_crop"}],
            store_images=True,
        ),
        seed=0,
    )
    source = row("r1")
    [out] = stage.process([source])
    assert out["corrupted_image"]["path"] is None
    stored = np.asarray(Image.open(io.BytesIO(out["corrupted_image"]["bytes"])))
    recreated = np.asarray(apply_corruption(Image.open(io.BytesIO(source["image"]["bytes"])), out["corruption"]))
    assert stored.shape == (32, 48, 3)
    assert np.array_equal(stored, recreated)


def test_different_rows_get_different_noise():
    stage = Corrupt(CorruptParams(store_images=True), seed=0)
    first, second = stage.process([row("r1"), row("r2")])
    assert json.loads(first["corruption"])["seed"] != json.loads(second["corruption"])["seed"]
    assert first["corrupted_image"]["bytes"] != second["corrupted_image"]["bytes"]


def test_results_do_not_depend_on_batching():
    stage = Corrupt(CorruptParams(ops=[{"op": "diffusion_noise"}, {"op": "color_jitter"}], store_images=True), seed=4)
    rows = [row(f"r{i}") for i in range(4)]
    assert stage.process(rows) == [out for r in rows for out in stage.process([r])]


def test_exif_rotated_source_is_corrupted_upright():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when displayed
    buffer = io.BytesIO()
    textured(width=40, height=20).save(buffer, format="JPEG", exif=exif)
    source = {"row_id": "r", "image_id": "i", "image": {"bytes": buffer.getvalue(), "path": "r.jpg"}}
    [out] = Corrupt(CorruptParams(store_images=True), seed=0).process([source])
    assert Image.open(io.BytesIO(out["corrupted_image"]["bytes"])).size == (20, 40)


@pytest.mark.parametrize(
    ("image", "detail"),
    [
        ({"bytes": b"not an image", "path": "x.png"}, "UnidentifiedImageError"),
        ({"bytes": None, "path": "x.png"}, "no image bytes"),
        ({"bytes": png(textured())[:60], "path": "x.png"}, "OSError"),
    ],
)
def test_undecodable_image_is_dropped_not_raised(image, detail):
    source = {"row_id": "bad", "image_id": "i", "image": image}
    good = row("good")
    dropped, kept = Corrupt(CorruptParams(), seed=0).process([source, good])
    assert isinstance(dropped, Drop) and dropped.reason == "undecodable_image" and detail in dropped.detail
    assert dropped.row is source
    assert "corruption" in kept


def test_setup_fails_fast_on_parameters_albumentations_rejects():
    # model_construct skips our own validation, standing in for a check albumentations adds in a later version
    params = CorruptParams(ops=[Jpeg.model_construct(quality_range=(0, 200))])
    with pytest.raises(ValueError, match="quality_range"):
        Corrupt(params, seed=0).setup(None)


def test_declaring_every_stage_imports_nothing_heavy():
    # numpy and PIL (the template decodes images) cost tens of milliseconds; these cost seconds
    code = (
        "import sys, prefgen.recipe.catalogue; print(sorted(m for m in ('albumentations', 'cv2', 'torch', "
        "'torchvision', 'transformers', 'open_clip', 'datasets') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
