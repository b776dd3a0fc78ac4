"""Procedural shapes scenes with exact ground truth: the world every shapes-world model is trained and judged in.

A scene is 64 x 64 RGB with 1-4 non-overlapping objects, each one of 6 colours x 4 shapes. Everything that decides
the pixels (object colours after jitter, background, gradient, noise seed) is stored in the ``Scene``, so
``render(scene)`` is a pure function and a scene round-trips through JSON. Scene ``i`` of ``(seed, split)`` draws
from its own random stream, so it does not depend on how many scenes are generated or in which order.

Two distributions:
- ``train``: a co-occurrence prior. When a *trigger* appears, its *companion* is added with probability
  ``TRAIN_PRIOR_P`` (and captions name it right after the trigger), so a briefly trained model learns to say the
  companion whenever it sees the trigger: the language-prior hallucination the papers fight.
- ``eval``: no prior, and ``EVAL_BREAK_P`` of the scenes show a trigger without its companion on purpose.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SIZE = 64  # pixels per side; the models see 8 x 8 patches of 8 px
SUPERSAMPLE = 4  # shapes are drawn at 4x and box-filtered down, for anti-aliased edges
COLOURS = {
    "red": (220, 45, 45),
    "orange": (245, 140, 30),
    "yellow": (235, 215, 40),
    "green": (45, 170, 70),
    "blue": (45, 95, 225),
    "purple": (150, 65, 200),
}
SHAPES = ("circle", "square", "triangle", "cross")
KINDS = tuple((colour, shape) for colour in COLOURS for shape in SHAPES)  # the 24 object kinds
# trigger -> companion; no kind is in two pairs, so the pairs never interact
PRIOR_PAIRS = (
    (("yellow", "triangle"), ("green", "circle")),
    (("red", "square"), ("blue", "cross")),
    (("purple", "circle"), ("orange", "square")),
)
COMPANION = dict(PRIOR_PAIRS)
MANIFEST = "manifest.jsonl"
DESCRIBE_QUESTION = "Describe the image."  # the CHAIR prompt (``evaluate.DESCRIBE_PROMPT``)
TRIGGER = {companion: trigger for trigger, companion in PRIOR_PAIRS}
TRAIN_PRIOR_P = 0.9
EVAL_BREAK_P = 0.4
MAX_OBJECTS = 4
RADIUS = (9.5, 14.0)
COLOUR_JITTER = 20  # per channel, uniform +-
NOISE_STD = 5.0
SPLITS = {"train": 1, "eval": 2}


@dataclass(frozen=True)
class Obj:
    colour: str
    shape: str
    radius: float  # the object fits in a circle of this radius around (x, y)
    x: float
    y: float
    rgb: tuple[int, int, int] = (0, 0, 0)  # the drawn colour, after jitter

    @property
    def kind(self) -> tuple[str, str]:
        return (self.colour, self.shape)


@dataclass(frozen=True)
class Scene:
    objects: tuple[Obj, ...]
    background: tuple[int, int, int]
    gradient: tuple[float, float]  # brightness change across the image, in x and y
    noise_seed: int
    split: str = "train"
    index: int = 0

    @property
    def kinds(self) -> set[tuple[str, str]]:
        return {obj.kind for obj in self.objects}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Scene:
        objects = tuple(Obj(**{**o, "rgb": tuple(o["rgb"])}) for o in data["objects"])
        return cls(
            objects,
            tuple(data["background"]),
            tuple(data["gradient"]),
            int(data["noise_seed"]),
            data.get("split", "train"),
            int(data.get("index", 0)),
        )


# ------------------------------------------------------------------------------------------------ sampling


def scene_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), SPLITS[split], int(index)])


def make_scene(seed: int, split: str, index: int) -> Scene:
    """Scene ``index`` of the ``(seed, split)`` stream."""
    rng = scene_rng(seed, split, index)
    kinds = train_kinds(rng) if split == "train" else eval_kinds(rng)
    placed = _place(rng, kinds)
    objects = tuple(Obj(c, s, round(r, 2), round(x, 2), round(y, 2), _jitter(rng, c)) for (c, s), (r, x, y) in placed)
    grey = int(rng.integers(70, 191))
    tint = rng.integers(-25, 26, size=3)
    background = tuple(int(np.clip(grey + t, 0, 255)) for t in tint)
    gradient = tuple(round(float(g), 2) for g in rng.uniform(-25, 25, size=2))
    return Scene(objects, background, gradient, int(rng.integers(2**31)), split, index)


def scene_of(kinds, split: str = "eval") -> Scene:
    """A scene holding exactly ``kinds`` (laid out in a row; for tests and hand-made cases)."""
    objects = tuple(
        Obj(c, s, 9.5, 10.0 + 21.0 * (i % 3), 10.0 + 21.0 * (i // 3), COLOURS[c]) for i, (c, s) in enumerate(kinds)
    )
    return Scene(objects, (128, 128, 128), (0.0, 0.0), 0, split, 0)


def make_scenes(n: int, seed: int = 0, split: str = "train", start: int = 0) -> list[Scene]:
    return [make_scene(seed, split, i) for i in range(start, start + n)]


def train_kinds(rng: np.random.Generator) -> list[tuple[str, str]]:
    """1-4 uniform kinds; each trigger present pulls in its companion with probability ``TRAIN_PRIOR_P``."""
    kinds = [KINDS[i] for i in rng.integers(len(KINDS), size=int(rng.integers(1, MAX_OBJECTS + 1)))]
    for trigger, companion in PRIOR_PAIRS:
        if trigger in kinds and companion not in kinds and rng.random() < TRAIN_PRIOR_P:
            if len(kinds) < MAX_OBJECTS:
                kinds.append(companion)
            else:  # full: the companion replaces an object that belongs to no prior pair
                free = [i for i, k in enumerate(kinds) if k not in COMPANION and k not in TRIGGER]
                if free:
                    kinds[free[int(rng.integers(len(free)))]] = companion
    return kinds


def eval_kinds(rng: np.random.Generator) -> list[tuple[str, str]]:
    """No prior: exactly an ``EVAL_BREAK_P`` share of scenes hold a trigger whose companion is absent, the rest none
    (uniform kinds, redrawn while they would hold one)."""
    n = int(rng.integers(1, MAX_OBJECTS + 1))
    if rng.random() < EVAL_BREAK_P:
        trigger, companion = PRIOR_PAIRS[int(rng.integers(len(PRIOR_PAIRS)))]
        others = [k for k in KINDS if k != companion]
        return [trigger] + [others[i] for i in rng.integers(len(others), size=n - 1)]
    while True:
        kinds = [KINDS[i] for i in rng.integers(len(KINDS), size=n)]
        if not lone_triggers(kinds):
            return kinds


def lone_triggers(kinds) -> list[tuple[str, str]]:
    """Triggers among ``kinds`` whose companion is not there."""
    present = set(kinds)
    return sorted(k for k in present if k in COMPANION and COMPANION[k] not in present)


def _place(rng: np.random.Generator, kinds: list) -> list[tuple[tuple[str, str], tuple[float, float, float]]]:
    """Non-overlapping (radius, x, y) for each kind. Later attempts use smaller radii; if a layout still does not
    fit, one object that belongs to no prior pair is dropped (never the trigger or companion the scene is about)."""
    kinds = list(kinds)
    while True:
        for attempt in range(40):
            top = RADIUS[1] - (RADIUS[1] - RADIUS[0]) * attempt / 40
            layout = _try_layout(rng, len(kinds), (RADIUS[0], top))
            if layout is not None:
                return list(zip(kinds, layout))
        free = [i for i, k in enumerate(kinds) if k not in COMPANION and k not in TRIGGER]
        kinds.pop(free[-1] if free else -1)


def _try_layout(rng, n: int, radius_range) -> list[tuple[float, float, float]] | None:
    placed: list[tuple[float, float, float]] = []
    for _ in range(n):
        r = float(rng.uniform(*radius_range))
        candidates = rng.uniform(r + 1, SIZE - 1 - r, size=(60, 2))  # 60 tries at once
        ok = np.ones(len(candidates), bool)
        for pr, px, py in placed:
            ok &= np.hypot(candidates[:, 0] - px, candidates[:, 1] - py) > r + pr + 2
        if not ok.any():
            return None
        x, y = (float(v) for v in candidates[int(np.argmax(ok))])
        placed.append((r, x, y))
    return placed


def _jitter(rng, colour: str) -> tuple[int, int, int]:
    shift = rng.integers(-COLOUR_JITTER, COLOUR_JITTER + 1, size=3)
    return tuple(int(np.clip(c + s, 0, 255)) for c, s in zip(COLOURS[colour], shift))


# ------------------------------------------------------------------------------------------------ drawing


def render(scene: Scene) -> Image.Image:
    """The scene's pixels: background with a brightness gradient, anti-aliased objects, Gaussian pixel noise."""
    ramp = np.linspace(-0.5, 0.5, SIZE, dtype=np.float32)
    shade = scene.gradient[0] * ramp[None, :] + scene.gradient[1] * ramp[:, None]
    pixels = np.asarray(scene.background, np.float32)[None, None, :] + shade[:, :, None]
    if scene.objects:
        alpha = _coverage(scene.objects)  # (SIZE, SIZE, n); objects never overlap
        colours = np.asarray([obj.rgb for obj in scene.objects], np.float32)
        pixels = pixels * (1 - alpha.sum(-1, keepdims=True)) + alpha @ colours
    pixels += np.random.default_rng(scene.noise_seed).normal(0, NOISE_STD, pixels.shape).astype(np.float32)
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")


def _coverage(objects) -> np.ndarray:
    """Fraction of each pixel each object covers, (SIZE, SIZE, n): a mask drawn at 4x, box-filtered down by PIL
    (per object, which is faster than one index mask averaged in numpy)."""
    big = SIZE * SUPERSAMPLE
    out = np.empty((SIZE, SIZE, len(objects)), np.float32)
    for index, obj in enumerate(objects):
        mask = Image.new("L", (big, big), 0)
        _draw(ImageDraw.Draw(mask), obj, 255)
        out[:, :, index] = np.asarray(mask.resize((SIZE, SIZE), Image.Resampling.BOX), np.float32) / 255.0
    return out


def _draw(draw: ImageDraw.ImageDraw, obj: Obj, fill: int) -> None:
    s = SUPERSAMPLE
    x, y, r = obj.x * s, obj.y * s, obj.radius * s
    if obj.shape == "circle":
        q = 0.92 * r  # a slightly smaller disc keeps the four shapes' areas comparable
        draw.ellipse((x - q, y - q, x + q, y + q), fill=fill)
    elif obj.shape == "square":
        h = 0.7 * r  # corners reach 0.99 r
        draw.rectangle((x - h, y - h, x + h, y + h), fill=fill)
    elif obj.shape == "triangle":  # equilateral, pointing up, circumradius r
        corners = (math.pi / 2, 7 * math.pi / 6, 11 * math.pi / 6)
        draw.polygon([(x + r * math.cos(a), y - r * math.sin(a)) for a in corners], fill=fill)
    elif obj.shape == "cross":  # a plus sign whose arms reach 0.95 r
        arm, half = 0.95 * r, 0.3 * r
        draw.rectangle((x - arm, y - half, x + arm, y + half), fill=fill)
        draw.rectangle((x - half, y - arm, x + half, y + arm), fill=fill)
    else:
        raise ValueError(f"unknown shape {obj.shape!r}")


def patch_labels(scene: Scene, patch: int = 8, min_cover: float = 0.25) -> np.ndarray:
    """(SIZE/patch, SIZE/patch) labels: the index in ``KINDS`` of the object covering most of each patch, or
    ``len(KINDS)`` for background (objects covering less than ``min_cover`` of it). Computed from the geometry at
    pixel centres, not by rendering: it is the dense target that teaches a patch-based vision tower what shape sits
    where (see ``shapes.train``)."""
    centres = np.arange(SIZE, dtype=np.float32) + 0.5
    xs, ys = np.meshgrid(centres, centres)
    grid = SIZE // patch
    best = np.full((grid, grid), len(KINDS), np.int64)
    cover_best = np.full((grid, grid), min_cover, np.float32)
    for obj in scene.objects:
        inside = _inside(obj, xs - obj.x, ys - obj.y).astype(np.float32)
        cover = inside.reshape(grid, patch, grid, patch).mean(axis=(1, 3))
        better = cover >= cover_best
        best[better], cover_best[better] = KINDS.index(obj.kind), cover[better]
    return best


def _inside(obj: Obj, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Which offsets from the object's centre fall inside it: the same geometry ``_draw`` draws."""
    r = obj.radius
    if obj.shape == "circle":
        return np.hypot(dx, dy) <= 0.92 * r
    if obj.shape == "square":
        return (np.abs(dx) <= 0.7 * r) & (np.abs(dy) <= 0.7 * r)
    if obj.shape == "cross":
        arm, half = 0.95 * r, 0.3 * r
        return ((np.abs(dx) <= arm) & (np.abs(dy) <= half)) | ((np.abs(dx) <= half) & (np.abs(dy) <= arm))
    if obj.shape == "triangle":  # pointing up, circumradius r: below the two upper edges, above the base
        base = dy <= r / 2
        return base & (-dy <= r - math.sqrt(3) * np.abs(dx))
    raise ValueError(f"unknown shape {obj.shape!r}")


# ------------------------------------------------------------------------------------------------ folders

GROUND_TRUTH = "ground_truth.jsonl"


def write_scene_folder(out: str | Path, n: int, seed: int = 0, split: str = "eval") -> Path:
    """PNG files plus ``ground_truth.jsonl`` (file name, prefgen's image_id, the scene), e.g. a recipe's source,
    and ``manifest.jsonl`` (image, a description question, the objects): a manifest source whose ``objects``
    column (one entry per object, so a kind shown twice is listed twice and counts can be read) feeds the
    ``shapes_oracle`` and ``shapes_answer`` stages."""
    import hashlib
    import io

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines, manifest = [], []
    for scene in make_scenes(n, seed, split):
        buffer = io.BytesIO()
        render(scene).save(buffer, format="PNG")
        name = f"scene-{scene.index:05d}.png"
        (out / name).write_bytes(buffer.getvalue())
        # image_id is what prefgen's sources call the image (sha256 of the file's bytes), so a store joins on it
        image_id = hashlib.sha256(buffer.getvalue()).hexdigest()[:16]
        lines.append(json.dumps({"file": name, "image_id": image_id, "scene": scene.to_dict()}))
        manifest.append(
            json.dumps(
                {
                    "image": name,
                    "question": DESCRIBE_QUESTION,
                    "objects": sorted(f"{o.colour} {o.shape}" for o in scene.objects),
                }
            )
        )
    (out / GROUND_TRUTH).write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / MANIFEST).write_text("\n".join(manifest) + "\n", encoding="utf-8")
    return out


def read_ground_truth(path: str | Path) -> dict[str, Scene]:
    """Scenes of a ``ground_truth.jsonl`` (or its folder), keyed by both file name and image_id."""
    path = Path(path)
    if path.is_dir():
        path = path / GROUND_TRUTH
    found: dict[str, Scene] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            scene = Scene.from_dict(record["scene"])
            found[record["file"]] = found[record["image_id"]] = scene
    return found
