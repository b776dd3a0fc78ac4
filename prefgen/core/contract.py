"""The output contract: one row is one preference pair, in exactly the form trl's ``DPOTrainer`` reads for VLMs
(``images``, ``prompt``, ``chosen``, ``rejected``), plus provenance and score columns it ignores.

``Record`` documents a row (it generates ``schemas/record.schema.json``); ``features_for`` gives the Hugging Face
features the store writes, so ``datasets.load_dataset`` decodes images and messages without being told.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import datasets

#: Columns every stored row must have: trl's VLM preference format plus a row id.
REQUIRED_COLUMNS = ("id", "images", "prompt", "chosen", "rejected")


#: The columns a recipe must end by writing: what trl reads plus the score provenance every pair carries.
CONTRACT_COLUMNS = ("images", "prompt", "chosen", "rejected", "chosen_score", "rejected_score", "margin", "method")


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant"]
    content: str


class ImageData(BaseModel):
    """An image as datasets stores it in parquet: encoded bytes, or a path when the bytes are elsewhere."""

    model_config = ConfigDict(extra="forbid")
    bytes: builtins.bytes | None = Field(None, description="Encoded image file (PNG/JPEG...).")
    path: builtins.str | None = Field(None, description="Original file name or path, when known.")


class Record(BaseModel):
    """One preference pair. Columns beyond these may be present (per-stage scores, attempts, ...)."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(..., description="Stable id of the pair (hash of image, question and answers).")
    images: list[ImageData] = Field(..., description="The images of the prompt; trl inserts one placeholder each.")
    prompt: list[Message] = Field(..., description="`[{'role': 'user', 'content': question}]`.")
    chosen: list[Message] = Field(..., description="`[{'role': 'assistant', 'content': preferred answer}]`.")
    rejected: list[Message] = Field(..., description="`[{'role': 'assistant', 'content': dispreferred answer}]`.")
    image_id: str | None = Field(None, description="Content hash of the source image.")
    question: str | None = Field(None, description="The question as asked, without image placeholders.")
    question_source: str | None = Field(None, description="Where the question came from: dataset, self_question, ...")
    method: str | None = Field(None, description="How the pair was made: csr, sena, seva, ...")
    chosen_score: float | None = Field(None, description="Score of the chosen answer under the recipe's reward.")
    rejected_score: float | None = Field(None, description="Score of the rejected answer.")
    margin: float | None = Field(None, description="chosen_score - rejected_score.")
    chosen_clip: float | None = Field(None, description="Image relevance of the chosen answer (calibrated CLIP).")
    rejected_clip: float | None = Field(None, description="Image relevance of the rejected answer.")
    chosen_logp: float | None = Field(None, description="Mean token log-prob of the chosen answer under the model.")
    rejected_logp: float | None = Field(None, description="Mean token log-prob of the rejected answer.")
    corruption: str | None = Field(None, description="JSON description of the image corruption behind `rejected`.")
    round: int | None = Field(None, description="Self-improvement round that produced the pair.")
    model: str | None = Field(None, description="Model id@revision or path that generated the answers.")
    recipe_fingerprint: str | None = Field(None, description="Fingerprint of the recipe that built the pair.")
    created_at: datetime | None = Field(None, description="When the pair was made (UTC).")


def _message_feature():
    from datasets import List, Value

    return List({"role": Value("string"), "content": Value("string")})


def contract_features() -> "datasets.Features":
    """Features of the contract columns, as trl's VLM collator expects them."""
    from datasets import Features, Image, List, Value

    text, number = Value("string"), Value("float64")
    return Features(
        {
            "id": text,
            "images": List(Image()),
            "prompt": _message_feature(),
            "chosen": _message_feature(),
            "rejected": _message_feature(),
            "image_id": text,
            "question": text,
            "question_source": text,
            "method": text,
            "chosen_score": number,
            "rejected_score": number,
            "margin": number,
            "chosen_clip": number,
            "rejected_clip": number,
            "chosen_logp": number,
            "rejected_logp": number,
            "corruption": text,
            "round": Value("int32"),
            "model": text,
            "recipe_fingerprint": text,
            "created_at": Value("timestamp[us, tz=UTC]"),
        }
    )
