"""SENA image-driven self-questioning: the model asks questions about the image, then checks each one *with the
image in view* (the reference code drops it there) and rewrites it when it cannot be answered, up to K times.

Reads ``image``; writes ``question``, ``question_source`` and ``question_attempts`` (one row per kept question).
"""

from typing import ClassVar, Literal

from pydantic import Field

from prefgen.stages.base import StageParams

ASK_PROMPT = "Please look at the image and generate a question related to the content of the image."
CHECK_PROMPT = (
    "Given an image, we try to ask a QUESTION about the image. Your task is to check whether this QUESTION can be "
    "answered based on the content of the image.\nQUESTION: {question}\n"
    "(1) If you can answer the QUESTION, please do not modify it. Output QUESTION directly.\n"
    "(2) If you cannot answer the QUESTION, please ask a new Question that depends on the content of the image.\n"
    "Your answer should be formatted as:\nQUESTION:"
)


class SelfQuestionParams(StageParams):
    """Ask, check and regenerate questions about each image."""

    type: Literal["self_question"] = "self_question"
    questions_per_image: int = Field(1, ge=1, le=64, description="Questions kept per image at most.")
    prompt: str = Field(ASK_PROMPT, description="The question-asking instruction (SENA's by default).")
    check: bool = Field(True, description="Run the answerability check, which sees the image.")
    check_prompt: str = Field(CHECK_PROMPT, description="Check instruction; `{question}` is replaced.")
    max_regenerations: int = Field(1, ge=0, le=10, description="How often a question judged unanswerable is rewritten.")
    banned_words: list[str] = Field(["name"], description="Questions containing any of these substrings are dropped.")
    require_question_mark: bool = Field(True, description="Keep only sentences that end with '?'.")
    max_new_tokens: int = Field(512, ge=1, description="Generation budget for asking and for each check.")
    temperature: float = Field(0.0, ge=0.0, description="0 means greedy decoding, as SENA does.")

    reads: ClassVar = ("image",)
    writes: ClassVar = ("question", "question_source", "question_attempts")
    models: ClassVar = ("vlm",)
