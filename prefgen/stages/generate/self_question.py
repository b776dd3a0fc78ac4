"""SENA image-driven self-questioning: the model asks questions about the image, then checks each one *with the
image in view* (the reference code drops it there) and rewrites it when it cannot be answered.

Reads ``image``; writes ``question``, ``question_source`` and ``question_attempts`` (one row per kept question,
``row_id`` ``<image row>-q<k>`` for the image's k-th candidate question).

1. Ask: ``questions_per_image`` generations on the clean image. Each output is split into sentences with SENA's
   ``(?<=[.!?])\\s+``; sentences ending with '?' are questions, a leading "QUESTION:" is stripped, and questions
   holding a banned word are dropped. The first ``questions_per_image`` distinct questions become candidates (so the
   checks cost at most that many generations per round).
2. Check (greedy): the check prompt, with the image, judges the candidate. Its question (the text after the last
   "QUESTION:", else its first question) replaces the candidate when it differs; no question, or the same one,
   keeps the candidate. A rewrite that fails the filters is checked again, up to ``max_regenerations`` more times,
   then dropped (``unusable_question``, with its attempts).
3. Kept questions are deduplicated per image; an image left without any is dropped (``no_question``).
4. With ``description_row`` (SENA), each image also gets a row asking for a concise description (``row_id``
   ``<image row>-d``, ``question_source`` "description"): SENA builds description pairs beside its question pairs,
   and its image-content-alignment loss (``prefgen train``, ``ica_weight``) trains on exactly those rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Literal

from pydantic import Field

from prefgen.models.prompts import Prompt
from prefgen.models.sentences import split_sentences
from prefgen.stages.base import Drop, Item, ModelStage, Row, StageParams, fill, generate

ASK_PROMPT = "Please look at the image and generate a question related to the content of the image."
# SENA's check prompt (data/step2/generate_question.py), word for word.
CHECK_PROMPT = (
    "Given an image, we try to ask a QUESTION about the image. Your task is to check whether this QUESTION can be "
    "answered based on the content of the image.\nQUESTION: {question}\n"
    "(1) If you can answer the QUESTION, please do not modify it. Output QUESTION directly.\n"
    "(2) If you cannot answer the QUESTION, please ask a new Question that depends on the content of the image.\n"
    "Your answer should be in the following format:\nQUESTION:"
)
MARKER = re.compile(r"QUESTION:", re.IGNORECASE)
# The brief-description instructions SENA draws from (LLaVA's list), one picked per image with the row's seed.
DESCRIPTION_PROMPTS = [
    "Describe the image concisely.",
    "Provide a brief description of the given image.",
    "Offer a succinct explanation of the picture presented.",
    "Summarize the visual content of the image.",
    "Give a short and clear explanation of the subsequent image.",
    "Share a concise interpretation of the image provided.",
    "Present a compact description of the photo's key features.",
    "Relay a brief, clear account of the picture shown.",
    "Render a clear and concise summary of the photo.",
    "Write a terse but informative summary of the picture.",
    "Create a compact narrative representing the image presented.",
]
EXTRA_SAMPLE_TEMPERATURE = 1.0  # the questions after the first when `temperature` is 0


class SelfQuestionParams(StageParams):
    """Ask, check and regenerate questions about each image."""

    type: Literal["self_question"] = "self_question"
    questions_per_image: int = Field(1, ge=1, le=64, description="Questions kept per image at most.")
    prompt: str = Field(ASK_PROMPT, description="The question-asking instruction (SENA's by default).")
    check: bool = Field(True, description="Run the answerability check, which sees the image.")
    check_prompt: str = Field(CHECK_PROMPT, description="Check instruction; `{question}` is replaced.")
    max_regenerations: int = Field(
        1,
        ge=0,
        le=10,
        description="How often the check runs again when the question it wrote fails the filters "
        "(0: one check pass, as SENA); a question that still fails is dropped.",
    )
    banned_words: list[str] = Field(
        ["name"], description="Questions containing any of these substrings (any case) are dropped."
    )
    require_question_mark: bool = Field(True, description="Keep only sentences that end with '?'.")
    max_new_tokens: int = Field(512, ge=1, description="Generation budget for asking and for each check.")
    temperature: float = Field(
        0.0,
        ge=0.0,
        description="Asking: 0 means greedy decoding, as SENA does; with questions_per_image > 1 the "
        "first question is then greedy and the others are sampled at temperature 1 from the row's seed. The check "
        "is always greedy.",
    )

    description_row: bool = Field(
        False,
        description="Also emit one row per image whose question asks for a concise description "
        "(question_source 'description'), as SENA does; those rows feed the ICA loss in training.",
    )
    description_prompts: list[str] = Field(
        DESCRIPTION_PROMPTS, min_length=1, description="Instructions a description row draws from (seeded per image)."
    )

    reads: ClassVar = ("image",)
    writes: ClassVar = ("question", "question_source", "question_attempts")
    models: ClassVar = ("vlm",)


@dataclass
class CandidateQuestion:
    """One question of one image on its way through the checks."""

    row: int  # index of its image's row in the batch
    number: int  # its position among the image's candidates
    attempts: list[str]  # the asked question, then each rewrite the check proposed
    done: bool = False
    failure: str = ""  # why it was dropped; empty while kept

    @property
    def question(self) -> str:
        return self.attempts[-1]

    @property
    def source(self) -> str:
        return "self_question" if same(self.question, self.attempts[0]) else "regenerated"


def same(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def strip_marker(sentence: str) -> str:
    return re.sub(r"^\s*QUESTION:\s*", "", sentence, flags=re.IGNORECASE).strip()


class SelfQuestion(ModelStage):
    params: SelfQuestionParams

    # ------------------------------------------------------------------------------------------------ filters

    def problem(self, question: str) -> str | None:
        """Why a question cannot be kept (a short phrase), or None."""
        if self.params.require_question_mark and not question.endswith("?"):
            return "does not end with '?'"
        banned = [word for word in self.params.banned_words if word and word.casefold() in question.casefold()]
        return f"contains the banned word {banned[0]!r}" if banned else None

    def questions_in(self, text: str) -> list[str]:
        """SENA's split: the sentences ending with '?' (all of them without ``require_question_mark``)."""
        mark = self.params.require_question_mark
        found = [strip_marker(s) for s in split_sentences(text) if s.endswith("?") or not mark]
        return [q for q in found if q]

    def proposal(self, check_output: str) -> str | None:
        """The question a check output proposes: after the last "QUESTION:" followed by text (its first question,
        else its first sentence, which then fails the '?' filter), else the output's first question."""
        for marker in reversed(list(MARKER.finditer(check_output))):
            tail = split_sentences(check_output[marker.end() :])
            if tail:
                return next((s for s in tail if s.endswith("?")), tail[0])
        questions = self.questions_in(check_output)
        return questions[0] if questions else None

    # ------------------------------------------------------------------------------------------------ steps

    def ask(self, prompts: list, seeds: list[int]) -> list[list[str]]:
        """``questions_per_image`` outputs per prompt: all sampled with temperature > 0; else greedy first (SENA)
        and the rest sampled, since greedy decoding would repeat the first."""
        p = self.params
        k, budget = p.questions_per_image, p.max_new_tokens
        if p.temperature > 0:
            return generate(self.vlm, prompts, seeds, n=k, max_new_tokens=budget, temperature=p.temperature)
        outputs = generate(self.vlm, prompts, max_new_tokens=budget)
        if k > 1:
            extra = generate(
                self.vlm, prompts, seeds, n=k - 1, max_new_tokens=budget, temperature=EXTRA_SAMPLE_TEMPERATURE
            )
            outputs = [first + rest for first, rest in zip(outputs, extra)]
        return outputs

    def candidates(self, row: int, outputs: list[str]) -> tuple[list[CandidateQuestion], str]:
        """The image's first distinct usable questions, and (when there are none) why."""
        found: list[str] = []
        rejected: list[str] = []
        for question in (q for text in outputs for q in self.questions_in(text)):
            problem = self.problem(question)
            if problem:
                rejected.append(f"{question!r} {problem}")
            elif not any(same(question, seen) for seen in found):
                found.append(question)
        found = found[: self.params.questions_per_image]
        if found:
            return [CandidateQuestion(row, k, [q]) for k, q in enumerate(found)], ""
        why = "; ".join(rejected) or f"no question in {[text[:200] for text in outputs]!r}"
        return [], why[:500]

    def check(self, candidates: list[CandidateQuestion], images: list) -> None:
        """Run the answerability check (image attached) over all candidates, one batched generation per round."""
        p = self.params
        pending = list(candidates)
        for round_ in range(p.max_regenerations + 1):
            prompts = [Prompt(fill(p.check_prompt, question=c.question), (images[c.row],)) for c in pending]
            outputs = generate(self.vlm, prompts, max_new_tokens=p.max_new_tokens)  # greedy: a judgement
            for candidate, [text] in zip(pending, outputs):
                self.judge(candidate, text, last=round_ == p.max_regenerations)
            pending = [c for c in pending if not c.done]
            if not pending:
                return

    def judge(self, candidate: CandidateQuestion, check_output: str, last: bool) -> None:
        """Apply one check output: keep the question, take the rewrite, or (a rewrite failing the filters) check
        it again or drop it."""
        proposal = self.proposal(check_output)
        rewritten = proposal is not None and not same(proposal, candidate.question)
        if rewritten:
            candidate.attempts.append(proposal)
        problem = self.problem(candidate.question)
        # A check standing by a rewrite that fails the filters would only repeat itself (greedy): stop there too.
        if problem is None or last or not rewritten:
            candidate.done = True
            if problem:
                candidate.failure = f"{candidate.question!r} {problem}; attempts: {candidate.attempts!r}"

    # ------------------------------------------------------------------------------------------------ batch

    def run(self, items: list[Item]) -> list[list[Row | Drop]]:
        images = [item.image for item in items]
        asked = self.ask([Prompt(self.params.prompt, (image,)) for image in images], [item.seed for item in items])
        found = [self.candidates(i, outputs) for i, outputs in enumerate(asked)]
        if self.params.check:
            self.check([c for candidates, _ in found for c in candidates], images)
        return [self.rows_for(item, candidates, empty) for item, (candidates, empty) in zip(items, found)]

    def rows_for(self, item: Item, candidates: list[CandidateQuestion], empty_reason: str) -> list[Row | Drop]:
        """One row per kept distinct question, a Drop per dropped question, and a Drop of the image without any."""
        row = item.row
        out: list[Row | Drop] = []
        kept: list[str] = []
        for c in candidates:
            new = {
                **row,
                "row_id": f"{row['row_id']}-q{c.number}",
                "question": c.question,
                "question_source": c.source,
                "question_attempts": list(c.attempts),
            }
            if c.failure:
                out.append(Drop(new, "unusable_question", c.failure[:500]))
            elif not any(same(c.question, q) for q in kept):  # two candidates can be rewritten into one question
                kept.append(c.question)
                out.append(new)
        if self.params.description_row:
            prompts = self.params.description_prompts
            prompt = prompts[item.seed % len(prompts)]
            out.append(
                {
                    **row,
                    "row_id": f"{row['row_id']}-d",
                    "question": prompt,
                    "question_source": "description",
                    "question_attempts": [],
                }
            )
        elif not kept:
            detail = empty_reason or f"all {len(candidates)} question(s) failed the check"
            out.append(Drop(row, "no_question", detail))
        return out


SelfQuestionParams.runtime = SelfQuestion
