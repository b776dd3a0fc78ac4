"""CSR sentence-level beam search with the calibrated reward: the best ended path becomes the chosen answer and the
worst the rejected.

Mode ``paper``: candidates are sampled; each sentence earns ``lam * max(100 cos, 0) + (1 - lam) * P(sentence)``, a
path the sum (or mean) of those, and the top ceil(w/2) and bottom floor(w/2) paths by that reward go on each level.
Mode ``reference``: the released code's diverse group search, LM-only pruning (top 1, bottom 2 for w = 5), then
sibling rank fusion with alpha = lam and path-mean selection, so published numbers can be reproduced.
The tree and the selection rules live in ``csr_tree``; this module feeds them the VLM and CLIP, batched: each level
is one ``sentence_steps`` call for every active path of every row of the batch (prompts encoded once per batch) and
one CLIP call for every new sentence.

Reads ``image``, ``image_id`` (the CLIP image cache key) and ``question``; writes ``csr_chosen``, ``csr_rejected``,
their rewards (higher is better in both modes: the path reward in ``paper``, minus the rank key in ``reference``)
and per-sentence scores. Drop reasons: ``missing_question``, ``undecodable_image``, ``no_finished_path`` (the
filters removed candidates until no path could end; in ``reference`` mode, where unended leaves are the fallback,
only when not one sentence was kept), ``equal_answers`` (chosen and rejected read the same).
"""

from __future__ import annotations

import hashlib
from typing import ClassVar, Literal

from pydantic import Field

from prefgen.models.prompts import Prompt
from prefgen.stages.base import Drop, Item, ModelStage, Row, StageParams
from prefgen.stages.csr.tree import Node, SearchConfig, Sentence, grow, select


class CsrSearchParams(StageParams):
    """Sentence-level beam search with CLIP-calibrated rewards."""

    type: Literal["csr_search"] = "csr_search"
    mode: Literal["paper", "reference"] = Field("paper", description="Paper formulation or released-code behaviour.")
    beam_width: int = Field(
        5,
        ge=1,
        le=64,
        description="Paths kept per level: paper keeps the top ceil(w/2) and bottom floor(w/2) by "
        "path reward; reference keeps new[:w//2 - 1] + new[-(w//2):] by LM score (top 1 + bottom 2 for w = 5).",
    )
    candidates_per_step: int = Field(
        5,
        ge=1,
        le=64,
        description="Candidate next sentences per path (sampled in paper mode, diverse group search "
        "in reference mode).",
    )
    max_sentences: int = Field(12, ge=1, le=128, description="Depth limit of the search; a path this deep ends.")
    max_tokens_per_sentence: int = Field(70, ge=1, description="Token budget of one sentence.")
    lam: float = Field(0.9, ge=0.0, le=1.0, description="Weight of image relevance (CSR uses 0.9).")
    temperature: float = Field(1.0, gt=0.0, description="Sampling temperature for candidate sentences (paper mode).")
    min_sentence_chars: int = Field(4, ge=0, description="Candidates shorter than this are dropped (as CSR does).")
    path_reward: Literal["sum", "mean"] = Field(
        "sum",
        description="Paper mode: a path's reward is the sum of its sentence rewards (the paper; favours long "
        "answers) or their mean (length-neutral).",
    )
    clip_reward: Literal["clamped", "centred"] = Field(
        "clamped",
        description="Paper mode: a sentence's image reward is max(100 cos, 0) (the paper: an absent object's "
        "sentence costs nothing, so the sum favours longer answers) or 100 (cos - c), c the mean cosine of every "
        "sentence the tree proposed for the image (label-free calibration: a poorly grounded sentence costs reward).",
    )
    diversity_penalty: float = Field(
        3.0, ge=0.0, description="Reference mode: Hamming penalty of the diverse group search (CSR uses 3.0)."
    )

    reads: ClassVar = ("image", "image_id", "question")
    writes: ClassVar = (
        "csr_chosen",
        "csr_rejected",
        "csr_chosen_reward",
        "csr_rejected_reward",
        "csr_chosen_steps",
        "csr_rejected_steps",
    )
    models: ClassVar = ("vlm", "clip")
    later_keys: ClassVar = ("clip_reward",)

    def engine_problem(self, engine: str) -> tuple[str, str] | None:
        if engine == "vllm" and self.mode == "reference":
            return "mode", (
                "mode: reference runs CSR's diverse group search, which the vLLM engine does not have (vLLM offers "
                "sampling and plain beam search); use mode: paper, or models.vlm.engine: hf"
            )
        return None


def path_seed(row_seed: int, path_id: tuple[int, ...]) -> int:
    """The sampling seed of one path: from the row's seed and the path's candidate indices, nothing about the batch."""
    key = f"{row_seed}:{','.join(map(str, path_id))}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") >> 1


class CsrSearch(ModelStage):
    params: CsrSearchParams

    def run(self, items: list[Item]) -> list[Row | Drop]:
        return [self._result(item, root) for item, root in zip(items, self._search(items))]

    def config(self) -> SearchConfig:
        p = self.params
        return SearchConfig(
            p.mode, p.beam_width, p.max_sentences, p.lam, p.path_reward, p.min_sentence_chars, p.clip_reward
        )

    def _search(self, items: list[Item]) -> list[Node]:
        """Grow one tree per item; returns the roots."""
        p = self.params
        encoded = self.vlm.encode([Prompt(item.question, (item.image,)) for item in items])
        seeds = [item.seed for item in items]
        decoding = (
            dict(strategy="diverse", diversity_penalty=p.diversity_penalty)
            if p.mode == "reference"
            else dict(strategy="sample", temperature=p.temperature)
        )

        def propose(pairs):
            steps = self.vlm.sentence_steps(
                encoded,
                [node.partial() for _, node in pairs],
                rows=[tree for tree, _ in pairs],
                k=p.candidates_per_step,
                max_new_tokens=p.max_tokens_per_sentence,
                seed=[path_seed(seeds[tree], node.path_id()) for tree, node in pairs],
                **decoding,
            )
            return [[Sentence(c.text, c.finished, c.logprob_sum, c.logprob_mean) for c in found] for found in steps]

        def measure(pairs):
            # CLIP sees only the new sentence, as CSR scores it; truncation to 77 tokens is the scorer's job
            return self.clip.cosine(
                [items[tree].image for tree, _ in pairs],
                [node.sentence.text.strip() for _, node in pairs],
                keys=[str(items[tree].row["image_id"]) for tree, _ in pairs],
            )

        roots = [Node() for _ in items]
        grow(roots, self.config(), propose, measure)
        return roots

    def _result(self, item: Item, root: Node) -> Row | Drop:
        row = item.row
        choice = select(root, self.config())
        if choice is None:
            return Drop(row, "no_finished_path", "every candidate sentence was filtered out before a path ended")
        chosen, rejected = choice.chosen.answer(), choice.rejected.answer()
        if chosen == rejected:
            return Drop(row, "equal_answers", "the best and the worst path read the same")
        return {
            **row,
            "csr_chosen": chosen,
            "csr_rejected": rejected,
            "csr_chosen_reward": float(choice.chosen_value),
            "csr_rejected_reward": float(choice.rejected_value),
            "csr_chosen_steps": self._steps(choice.chosen),
            "csr_rejected_steps": self._steps(choice.rejected),
        }

    def _steps(self, node) -> list[dict]:
        """Per sentence of a path: its text and every score that went into the choice."""
        p, steps = self.params, []
        centre = node.lineage()[0].parent.centre if node.parent is not None else 0.0
        for n in node.lineage():
            step = {
                "text": n.sentence.text.strip(),
                "clip_cosine": float(n.cosine),
                "clip": max(100.0 * n.cosine, 0.0) if p.clip_reward == "clamped" else 100.0 * (n.cosine - centre),
                "logprob_sum": float(n.sentence.logprob_sum),
                "logprob_mean": float(n.sentence.logprob_mean),
                "reward": float(n.reward),
            }
            if self.params.mode == "reference":
                step.update(lm_rank=float(n.lm_rank), clip_rank=float(n.clip_rank))
            steps.append(step)
        return steps


CsrSearchParams.runtime = CsrSearch
