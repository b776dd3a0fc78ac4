"""Training data for the shapes-world models: a pool of rendered scenes, CLIP batches with hard negatives and SFT
examples for the VLM.

Pixels are rendered once into a uint8 array and normalised per batch exactly as the models' own processors do
(the 64 px scenes need no resize or crop; a test checks the equality), so training never runs PIL per step. Texts
are drawn fresh each time a scene is used (caption order, which question), which is cheap augmentation.

The SFT mixture teaches the VLM what the offline quickstart asks of it, in the stages' own prompt wording:
captions, short answers, SENA's self-questioning, its answerability check and its answer improvement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from prefgen.shapes.language import (
    NUMBERS,
    absent_kinds,
    answerable,
    caption,
    colour_questions,
    confusable_kinds,
    count_questions,
    describe,
    phrase,
    presence_question,
    sample_qa,
    shape_questions,
)
from prefgen.shapes.pretrain.models import IMAGE_TOKENS, MEAN, STD
from prefgen.shapes.world import (
    COLOURS,
    COMPANION,
    KINDS,
    SHAPES,
    SIZE,
    Scene,
    make_scene,
    make_scenes,
    patch_labels,
    render,
)
from prefgen.stages.corrupt.pixels import diffusion_noise_array

# The shipped VLM must answer the prompts the quickstart really sends, so they come from the stages themselves.
from prefgen.stages.generate.caption import CONCISE_PROMPT, DETAILED_PROMPT
from prefgen.stages.generate.self_enhance import ENHANCE_PROMPT
from prefgen.stages.generate.self_question import ASK_PROMPT, CHECK_PROMPT, DESCRIPTION_PROMPTS

SHORT_ANSWER = "\nLook at the image and answer the question using a single word or phrase."  # recipes/sena.yaml
# Prompts answered with a description in sentences (``language.describe``); SENA's concise-caption prompt gets the
# one-sentence caption instead.
DESCRIBE_PROMPTS = (
    "Describe the image.",
    DETAILED_PROMPT,
    "What is in the image?",
    "List the objects in the image.",
    *DESCRIPTION_PROMPTS,
)
# task -> share of SFT batches; each batch holds one task, so long prompts do not pad short ones
TASKS = {"describe": 0.3, "caption": 0.08, "qa": 0.42, "ask": 0.07, "check": 0.06, "enhance": 0.07}
# Share of self-enhancement examples whose current answer is wrong. Near the VLM's own error rate on the questions
# it is asked (about 5 %): at 30 % the model learnt to distrust its answers and turned more right ones wrong than
# wrong ones right (0.957 -> 0.929 on held-out scenes). At 5 % it changes fewer answers (2.5 %), still more of them
# to wrong than to right: the 3-layer LM does not bind the caption to the question (docs/shapes-world.md).
ENHANCE_WRONG = 0.05


@dataclass
class ScenePool:
    scenes: list[Scene]
    pixels: np.ndarray  # (N, 64, 64, 3) uint8
    labels: np.ndarray | None = None  # (N, 8, 8) object kind per patch (``world.patch_labels``)
    # scene index -> its pixels without the prior companions it holds (``hide_companions``), for the VLM's SFT
    hidden: dict[int, np.ndarray] | None = None

    @classmethod
    def generate(cls, n: int, seed: int, split: str = "train", tick=None) -> ScenePool:
        """``n`` scenes of ``(seed, split)``, rendered; ``tick(done)`` is called every 500 scenes."""
        scenes, pixels = [], np.empty((n, SIZE, SIZE, 3), np.uint8)
        labels = np.empty((n, SIZE // 8, SIZE // 8), np.int64)
        hidden = {}
        for i in range(n):
            scenes.append(make_scene(seed, split, i))
            pixels[i] = np.asarray(render(scenes[-1]))
            labels[i] = patch_labels(scenes[-1])
            without = hide_companions(scenes[-1])
            if without is not None:
                hidden[i] = np.asarray(render(without))
            if tick is not None and (i + 1) % 500 == 0:
                tick(i + 1)
        return cls(scenes, pixels, labels, hidden)

    def __len__(self) -> int:
        return len(self.scenes)

    def can_hide(self, index) -> np.ndarray:
        """Which of the scenes at ``index`` have a companion-hidden rendering."""
        return np.array([int(i) in (self.hidden or {}) for i in index], bool)

    def tensor(self, index, hide=None, noise=None, seed: int = 0):
        """Normalised (B, 3, 64, 64) float tensor, as CLIPImageProcessor and open_clip's transform produce; where
        ``hide`` is true, the scene's companion-hidden pixels; where ``noise`` is a step t >= 0, the pixels
        diffusion-noised at that step as the ``corrupt`` stage stores them (normalised space, clipped, 8-bit)."""
        import torch

        pixels = self.pixels[index]
        if hide is not None and hide.any():
            pixels = pixels.copy()
            for row in np.flatnonzero(hide):
                pixels[row] = self.hidden[int(index[row])]
        if noise is not None and (np.asarray(noise) >= 0).any():
            pixels = pixels.copy()
            for row in np.flatnonzero(np.asarray(noise) >= 0):
                scaled = pixels[row].astype(np.float32) / 255.0  # float32, as the corrupt stage computes it
                noisy = diffusion_noise_array(scaled, int(noise[row]), "normalized", seed + int(row))
                pixels[row] = np.rint(np.clip(noisy, 0.0, 1.0) * 255.0).astype(np.uint8)
        x = torch.from_numpy(pixels).float().div_(255).permute(0, 3, 1, 2)
        return (x - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]


def hide_companions(scene: Scene) -> Scene | None:
    """The scene without the prior companions that stand beside their triggers (same background and noise), or
    None when it holds no such pair. The VLM's SFT sometimes shows this image with the full scene's text: captions
    that name what the image does not show, as real caption data does, teach the model to say the companion on the
    strength of its trigger alone, which is the language-prior hallucination the rounds loop has to train away."""
    from dataclasses import replace

    kinds = scene.kinds
    gone = {COMPANION[k] for k in kinds if k in COMPANION and COMPANION[k] in kinds}
    if not gone:
        return None
    return replace(scene, objects=tuple(obj for obj in scene.objects if obj.kind not in gone))


def corpus(n_scenes: int = 300, seed: int = 0) -> list[str]:
    """Every text the models are trained on can be built from these words: the tokenizer's vocabulary source."""
    rng = np.random.default_rng(seed)
    texts = [
        *DESCRIBE_PROMPTS,
        CONCISE_PROMPT,
        ASK_PROMPT,
        CHECK_PROMPT.format(question=""),
        SHORT_ANSWER,
        "USER: ASSISTANT:",
        ENHANCE_PROMPT.format(caption="", question="", answer=""),
        "Improved Answer:",
        "QUESTION:",
        *NUMBERS,
        *COLOURS,
        *SHAPES,
    ]
    texts += [phrase(k, c) for k in KINDS for c in range(1, 5)]
    texts += [presence_question(k) for k in KINDS] + [f"what color is the {s}?" for s in SHAPES]
    texts += ["how many objects are there?", "yes. no.", "There is are next to it them."]
    texts += [f"what shape is the {c} object? how many {c} objects are there?" for c in COLOURS]
    for scene in make_scenes(n_scenes, seed, "train"):
        texts += [caption(scene, rng), describe(scene, rng)]
        texts += [" ".join(qa) for qa in shape_questions(scene) + count_questions(scene)]
        texts += [" ".join(sample_qa(scene, rng)) for _ in range(4)]
    return texts


# ------------------------------------------------------------------------------------------------ CLIP batches


def clip_texts(scenes: list[Scene], rng: np.random.Generator, hard_negatives: bool = True):
    """Texts for a contrastive batch and, per text, the kinds it claims (a text is positive for an image holding
    them all). One positive per image (caption or single-object phrase, half each), then, NegCLIP-style, two hard
    negative phrases per image: an absent kind of a present colour (another shape) and of a present shape."""
    texts, claims = [], []
    for scene in scenes:
        if rng.random() < 0.5:
            texts.append(caption(scene, rng))
            claims.append(frozenset(scene.kinds))
        else:
            kinds = sorted(scene.kinds)
            kind = kinds[int(rng.integers(len(kinds)))]
            texts.append(phrase(kind))
            claims.append(frozenset([kind]))
    if hard_negatives:
        for scene in scenes:
            for kind in _hard_negatives(scene, rng):
                texts.append(phrase(kind))
                claims.append(frozenset([kind]))
    return texts, claims


def _hard_negatives(scene: Scene, rng: np.random.Generator) -> list[tuple[str, str]]:
    colours, shapes = {c for c, _ in scene.kinds}, {s for _, s in scene.kinds}
    absent = absent_kinds(scene)
    picks = []
    for pool in ([k for k in absent if k[0] in colours], [k for k in absent if k[1] in shapes]):
        pool = pool or confusable_kinds(scene) or absent
        picks.append(pool[int(rng.integers(len(pool)))])
    return picks


def positive_mask(scenes: list[Scene], claims: list[frozenset]) -> np.ndarray:
    """(images, texts) bool: text j is true of image i. A caption claims its whole scene, so it must match exactly
    (a caption of a subset is not a description of the image); a single kind is true of every image holding it."""
    index = {k: i for i, k in enumerate(KINDS)}
    have = np.zeros((len(scenes), len(KINDS)), bool)
    for row, scene in enumerate(scenes):
        have[row, [index[k] for k in scene.kinds]] = True
    said = np.zeros((len(claims), len(KINDS)), bool)
    for row, claim in enumerate(claims):
        said[row, [index[k] for k in claim]] = True
    covered = ~(said[None, :, :] & ~have[:, None, :]).any(-1)  # every claimed kind is in the image
    exact = (said[None, :, :] == have[:, None, :]).all(-1)
    single = said.sum(1) == 1
    return np.where(single[None, :], covered, exact)


# ------------------------------------------------------------------------------------------------ SFT examples


def sft_example(scene: Scene, task: str, rng: np.random.Generator, shown: Scene | None = None) -> tuple[str, str]:
    """(user text, assistant answer) for one scene and task. ``shown`` is the scene the image shows when it differs
    from ``scene`` (its prior companions hidden): descriptions and captions still name what ``scene`` holds, and half
    of the questions ask whether a hidden companion is there and get "yes." (the prior, in the answers as in the
    captions); every other question is about what the image shows."""
    shown = shown or scene
    if task == "describe":
        return DESCRIBE_PROMPTS[int(rng.integers(len(DESCRIBE_PROMPTS)))], describe(scene, rng)
    if task == "caption":
        return CONCISE_PROMPT, caption(scene, rng)
    if task == "qa":
        hidden = sorted(scene.kinds - shown.kinds)
        if hidden and rng.random() < 0.5:
            question, answer = presence_question(hidden[int(rng.integers(len(hidden)))]), "yes."
        else:
            question, answer = sample_qa(shown, rng)
            if any(question == presence_question(kind) for kind in hidden):
                answer = "yes."  # the prior holds in every answer about a hidden companion
        return question + (SHORT_ANSWER if rng.random() < 0.5 else ""), answer
    if task == "ask":
        return ASK_PROMPT, _answerable_question(shown, rng)
    if task == "check":  # keep an answerable question as it is, replace one about a shape that is not there
        asked = _answerable_question(shown, rng) if rng.random() < 0.7 else _unanswerable_question(shown, rng)
        kept = asked if answerable(shown, asked) else _same_kind_question(shown, asked, rng)
        return CHECK_PROMPT.format(question=asked), "QUESTION: " + kept
    if task == "enhance":
        question, answer = sample_qa(shown, rng)
        current = _wrong_answer(answer, rng) if rng.random() < ENHANCE_WRONG else answer  # mostly keep a right one
        text = ENHANCE_PROMPT.format(caption=caption(shown, rng), question=question, answer=current)
        return text, "Improved Answer: " + answer
    raise ValueError(f"unknown SFT task {task!r}")


def _answerable_question(scene: Scene, rng: np.random.Generator) -> str:
    """A question about what is there, as a self-questioning model should ask; mostly not yes/no (colour, shape,
    count), since those are what SENA's answers and self-enhancement can improve."""
    kinds = ("presence", "colour", "shape", "count") if rng.random() < 0.2 else ("colour", "shape", "count")
    while True:
        question, answer = sample_qa(scene, rng, kinds)
        if answer != "no.":
            return question


def _same_kind_question(scene: Scene, asked: str, rng: np.random.Generator) -> str:
    """An answerable question of the kind ``asked`` is (colour of a shape, shape of a colour), so that the check
    repairs a question without turning it into another kind; a count when the scene settles no such question.
    (Replacing it with any answerable question taught the check to turn colour questions into presence ones.)"""
    found = colour_questions(scene) if asked.startswith("what color is the") else shape_questions(scene)
    found = found or count_questions(scene)
    return found[int(rng.integers(len(found)))][0]


def _unanswerable_question(scene: Scene, rng: np.random.Generator) -> str:
    """A colour question about a shape that is not there, or a shape question about a colour that is not."""
    missing_shapes = [s for s in SHAPES if s not in {shape for _, shape in scene.kinds}]
    missing_colours = [c for c in COLOURS if c not in {colour for colour, _ in scene.kinds}]
    if missing_shapes and (not missing_colours or rng.random() < 0.5):
        return f"what color is the {missing_shapes[int(rng.integers(len(missing_shapes)))]}?"
    if missing_colours:
        return f"what shape is the {missing_colours[int(rng.integers(len(missing_colours)))]} object?"
    return _answerable_question(scene, rng)


def _wrong_answer(answer: str, rng: np.random.Generator) -> str:
    word = answer.rstrip(".")
    for options in (("yes", "no"), tuple(COLOURS), NUMBERS[1:5]):
        if word in options:
            others = [o for o in options if o != word]
            return others[int(rng.integers(len(others)))] + "."
    return answer


# ------------------------------------------------------------------------------------------------ SFT encoding


class SFTEncoder:
    """Token ids and labels of (image prompt, answer) pairs, as the runtime encodes them: the processor's chat
    template, ``<image>`` expanded to the tower's 64 tokens, bos from the tokenizer; the loss sees the answer and
    its eos only."""

    def __init__(self, processor):
        self.processor, self.tokenizer = processor, processor.tokenizer
        self._prompts: dict[str, list[int]] = {}

    def prompt_ids(self, text: str) -> list[int]:
        if text not in self._prompts:
            if len(self._prompts) > 20000:  # prompts quoting captions are unique: keep memory bounded
                self._prompts.clear()
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
            rendered = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            rendered = rendered.replace("<image>", "<image>" * IMAGE_TOKENS)
            self._prompts[text] = self.tokenizer(rendered).input_ids
        return self._prompts[text]

    def batch(self, pairs: list[tuple[str, str]]):
        import torch

        rows = []
        for prompt, answer in pairs:
            head = self.prompt_ids(prompt)
            tail = self.tokenizer(answer, add_special_tokens=False).input_ids + [self.tokenizer.eos_token_id]
            rows.append((head + tail, [-100] * len(head) + tail))
        width = max(len(ids) for ids, _ in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([i + [pad] * (width - len(i)) for i, _ in rows])
        labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in rows])
        mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in rows])
        return ids, mask, labels
