"""CSR sentence-level beam search with the calibrated reward. Each candidate sentence is scored by
``lam * R_img + (1 - lam) * R_text``; the best finished path becomes the chosen answer and the worst the rejected.

Mode ``paper``: R_img = max(100 cos, 0), pruning to the top-k and bottom-k by calibrated reward during search.
Mode ``reference``: the released code's LM-only pruning (top 1, bottom 2), sibling rank fusion with alpha = lam,
path-mean selection, so published numbers can be reproduced.

Reads ``image`` and ``question``; writes ``csr_chosen``, ``csr_rejected``, their path rewards and per-sentence
scores.
"""

from typing import ClassVar, Literal

from pydantic import Field

from prefgen.stages.base import StageParams


class CsrSearchParams(StageParams):
    """Sentence-level beam search with CLIP-calibrated rewards."""

    type: Literal["csr_search"] = "csr_search"
    mode: Literal["paper", "reference"] = Field("paper", description="Paper formulation or released-code behaviour.")
    beam_width: int = Field(5, ge=1, le=64, description="Paths kept per level (the reference keeps top 1 + bottom 2).")
    candidates_per_step: int = Field(5, ge=1, le=64, description="Candidate next sentences sampled per path.")
    max_sentences: int = Field(12, ge=1, le=128, description="Depth limit of the search.")
    max_tokens_per_sentence: int = Field(70, ge=1, description="Token budget of one sentence.")
    lam: float = Field(0.9, ge=0.0, le=1.0, description="Weight of image relevance (CSR uses 0.9).")
    temperature: float = Field(1.0, gt=0.0, description="Sampling temperature for candidate sentences.")
    min_sentence_chars: int = Field(4, ge=0, description="Candidates shorter than this are dropped (as CSR does).")

    reads: ClassVar = ("image", "question")
    writes: ClassVar = (
        "csr_chosen", "csr_rejected", "csr_chosen_reward", "csr_rejected_reward",
        "csr_chosen_steps", "csr_rejected_steps",
    )
    models: ClassVar = ("vlm", "clip")
