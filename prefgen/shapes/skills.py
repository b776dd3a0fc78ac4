"""What a shapes VLM can do, asked exactly as the method stages ask it, and judged against ground truth.

``measure_skills(vlm, scenes)`` reports, on held-out scenes:

- ``qa``: accuracy per kind of question (colour of a shape, shape of a colour, number of objects), every settled
  question of each kind per scene, asked as the ``answer`` stage asks (the question, plus ``suffix``).
- ``ask``: SENA's self-questioning prompt, one greedy and ``samples`` sampled outputs per scene: the share of
  questions that are not yes/no, and the share the scene can answer (``judge.right_answer``), per kind asked.
- ``enhance``: SENA's self-enhancement on the model's own concise caption and plain answer (the ``self_enhance``
  stage's prompt and rule): accuracy of the plain and of the improved answers, and how often the text changed.
- ``corrupted``: the same questions on the image diffusion-noised at step ``t`` in normalised space (SENA's
  rejection): accuracy, and the babble rate (answers or descriptions with a word repeated three or more times in a
  row), with the description's CHAIR beside the clean one's.

POPE and CHAIR on clean images are ``evaluate.run_pope`` and ``evaluate.run_chair`` (benches ``shapes-pope`` and
``shapes-chair``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from prefgen.models.prompts import Prompt
from prefgen.shapes.judge import answer_correct, question_kind, right_answer
from prefgen.shapes.language import colour_questions, count_question, shape_questions
from prefgen.shapes.metrics import DESCRIBE_PROMPT, chair
from prefgen.shapes.world import Scene, render
from prefgen.stages.base import fill
from prefgen.stages.corrupt.ops import DiffusionNoise
from prefgen.stages.corrupt.pixels import apply_corruption, describe_corruption
from prefgen.stages.generate.caption import CONCISE_PROMPT
from prefgen.stages.generate.self_enhance import SelfEnhance, SelfEnhanceParams, says_nothing
from prefgen.stages.generate.self_question import ASK_PROMPT

QA_KINDS = ("colour", "shape", "count")
_BABBLE = re.compile(r"\b(\w+)(?:\W+\1\b){2,}", re.IGNORECASE)
_YES_NO_START = ("is ", "are ", "does ", "do ", "can ", "was ", "has ", "have ")


def babbles(text: str) -> bool:
    """A word said three or more times in a row ("four four four", "red, red, red")."""
    return bool(_BABBLE.search(text))


def is_yes_no(question: str) -> bool:
    return question.strip().lower().startswith(_YES_NO_START)


def questions_for(scene: Scene) -> list[tuple[str, str]]:
    """(kind, question) for every settled colour and shape question of the scene, and the object count."""
    found = [("colour", q) for q, _ in colour_questions(scene)] + [("shape", q) for q, _ in shape_questions(scene)]
    return found + [("count", count_question(scene)[0])]


class _Asker:
    def __init__(self, vlm, max_new_tokens: int, batch_size: int):
        self.vlm, self.max_new_tokens, self.batch_size = vlm, max_new_tokens, batch_size

    def __call__(self, prompts: list[Prompt], n: int = 1, temperature: float = 0.0, seed: int = 0) -> list[list[str]]:
        out: list[list[str]] = []
        for start in range(0, len(prompts), self.batch_size):
            chunk = prompts[start : start + self.batch_size]
            seeds = [seed + start + i for i in range(len(chunk))] if temperature > 0 else None
            found = self.vlm.generate(
                chunk, n=n, max_new_tokens=self.max_new_tokens, temperature=temperature, seed=seeds
            )
            out += [[c.text.strip() for c in candidates] for candidates in found]
        return out


def measure_skills(
    vlm,
    scenes: Sequence[Scene],
    suffix: str = "",
    samples: int = 2,
    t: int = 600,
    max_new_tokens: int = 48,
    batch_size: int = 64,
    seed: int = 0,
) -> dict:
    ask = _Asker(vlm, max_new_tokens, batch_size)
    images = [render(scene) for scene in scenes]
    noise = [DiffusionNoise(t=t, space="normalized")]
    noisy = [apply_corruption(image, describe_corruption(noise, seed + i)) for i, image in enumerate(images)]
    asked = [(i, kind, q) for i, scene in enumerate(scenes) for kind, q in questions_for(scene)]
    plain = [texts[0] for texts in ask([Prompt(q + suffix, images[i]) for i, _, q in asked])]
    report = {"scenes": len(scenes), "qa": _accuracy(asked, plain, scenes)}
    report["ask"] = _ask(ask, images, scenes, samples, seed)
    report["enhance"] = _enhance(ask, images, scenes, asked, plain)
    on_noise = [texts[0] for texts in ask([Prompt(q + suffix, noisy[i]) for i, _, q in asked])]
    clean_descriptions = [texts[0] for texts in ask([Prompt(DESCRIBE_PROMPT, image) for image in images])]
    noisy_descriptions = [texts[0] for texts in ask([Prompt(DESCRIBE_PROMPT, image) for image in noisy])]
    report["corrupted"] = {
        "t": t,
        "qa": _accuracy(asked, on_noise, scenes),
        "babble_answers": _share(babbles(a) for a in on_noise),
        "babble_descriptions": _share(babbles(d) for d in noisy_descriptions),
        "babble_descriptions_clean": _share(babbles(d) for d in clean_descriptions),
        "chair_clean": _chair_numbers(clean_descriptions, scenes),
        "chair": _chair_numbers(noisy_descriptions, scenes),
    }
    report["examples"] = {
        "qa": [(asked[k][2], plain[k], on_noise[k]) for k in range(min(6, len(asked)))],
        "describe": clean_descriptions[:3],
        "describe_noisy": noisy_descriptions[:3],
    }
    return report


def measure_qa(vlm, scenes: Sequence[Scene], suffix: str = "", max_new_tokens: int = 8, batch_size: int = 64) -> dict:
    """Only the ``qa`` part of ``measure_skills``: accuracy per kind of question on clean images (greedy)."""
    ask = _Asker(vlm, max_new_tokens, batch_size)
    asked = [(i, kind, q) for i, scene in enumerate(scenes) for kind, q in questions_for(scene)]
    images = [render(scene) for scene in scenes]
    return _accuracy(asked, [texts[0] for texts in ask([Prompt(q + suffix, images[i]) for i, _, q in asked])], scenes)


def _accuracy(asked, answers: Sequence[str], scenes: Sequence[Scene]) -> dict:
    right: Counter = Counter()
    total: Counter = Counter()
    for (i, kind, question), answer in zip(asked, answers):
        total[kind] += 1
        right[kind] += bool(answer_correct(question, answer, scenes[i]))
    result = {kind: right[kind] / total[kind] for kind in QA_KINDS if total[kind]}
    result["all"] = sum(right.values()) / max(sum(total.values()), 1)
    result["questions"] = sum(total.values())
    return result


def _ask(ask: _Asker, images, scenes, samples: int, seed: int) -> dict:
    prompts = [Prompt(ASK_PROMPT, image) for image in images]
    outputs = [
        g + s
        for g, s in zip(
            ask(prompts), ask(prompts, n=samples, temperature=1.0, seed=seed) if samples else [[] for _ in prompts]
        )
    ]
    kinds: Counter = Counter()
    answerable: Counter = Counter()
    questions = 0
    for scene, texts in zip(scenes, outputs):
        for text in texts:
            questions += 1
            kind = "yes/no" if is_yes_no(text) else question_kind(text)
            kinds[kind] += 1
            answerable[kind] += right_answer(text, scene) is not None
    return {
        "questions": questions,
        "not_yes_no": _ratio(questions - kinds["yes/no"], questions),
        "by_kind": {
            k: {"share": _ratio(kinds[k], questions), "answerable": _ratio(answerable[k], kinds[k])}
            for k in sorted(kinds)
        },
        "examples": [text for texts in outputs[:3] for text in texts],
    }


def _enhance(ask: _Asker, images, scenes, asked, plain: Sequence[str]) -> dict:
    stage = SelfEnhance(SelfEnhanceParams(), seed=0)
    captions = [texts[0] for texts in ask([Prompt(CONCISE_PROMPT, image) for image in images])]
    prompts = []
    for (i, _, question), answer in zip(asked, plain):
        template, caption = (
            (stage.params.prompt_no_caption, "") if says_nothing(captions[i]) else (stage.params.prompt, captions[i])
        )
        prompts.append(Prompt(fill(template, caption=caption, question=question, answer=answer), images[i]))
    improved = [stage.improve(answer, texts[0])[0] for answer, texts in zip(plain, ask(prompts))]
    return {
        "plain": _accuracy(asked, plain, scenes)["all"],
        "improved": _accuracy(asked, improved, scenes)["all"],
        "changed": _share(a != b for a, b in zip(plain, improved)),
        "caption_chair": _chair_numbers(captions, scenes),
    }


def _chair_numbers(texts: Sequence[str], scenes: Sequence[Scene]) -> dict:
    found = chair(texts, scenes)
    return {k: found[k] for k in ("chair_s", "chair_i", "recall", "companion_rate", "other_absent_rate")}


def _share(flags) -> float:
    flags = list(flags)
    return _ratio(sum(flags), len(flags))


def _ratio(a: float, b: float) -> float:
    return float(a) / b if b else 0.0
