"""What the VLM stages share: each row's image (a bad image drops that row, not the batch), one batched ``generate``
call per step with a seed per prompt, and the cleaning every generated text gets.

Heavy modules (PIL, torch, transformers) are imported inside the functions, so declaring stages stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from prefgen.stages.base import Drop, Row

if TYPE_CHECKING:
    from PIL import Image


def row_image(row: Row) -> Image.Image | Drop:
    """The row's source image, decoded and prepared as the VLM will see it, or the Drop saying why it cannot be."""
    from prefgen.stages.corruption_ops import decode_image

    try:
        return decode_image(row.get("image"))
    except Exception as error:  # any decoder failure is a property of the data, not a bug here
        return Drop(row, "undecodable_image", f"{type(error).__name__}: {error}")


def row_question(row: Row) -> str | Drop:
    """The row's question, or a Drop: an empty prompt would make the model runtime refuse the whole batch."""
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        return Drop(row, "missing_question", f"question: {question!r}")
    return question


def generate(vlm, prompts: list, seeds: Sequence[int] | None = None, *, n: int = 1, max_new_tokens: int,
             temperature: float = 0.0, top_p: float = 1.0, stop: Sequence[str] = ()) -> list[list[str]]:
    """``n`` cleaned texts per prompt from one batched call. Greedy when ``temperature`` is 0; sampling draws from
    each prompt's own seed (a stage's per-row seed), so a text does not depend on the batch it was generated in."""
    if not prompts:
        return []
    if temperature > 0 and seeds is None:
        raise ValueError("sampling needs one seed per prompt")
    found = vlm.generate(prompts, n=n, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                         stop=list(stop), seed=list(seeds) if seeds is not None else None)
    return [[clean(candidate.text, stop) for candidate in candidates] for candidates in found]


def clean(text: str, stop: Sequence[str] = ()) -> str:
    """Generated text as stored: cut at the first stop string (the runtime keeps it, as transformers does, and may
    keep the rest of its last token too), without surrounding whitespace."""
    cuts = [text.find(s) for s in stop if s and s in text]
    return (text[:min(cuts)] if cuts else text).strip()


def fill(template: str, **values: str) -> str:
    """``template`` with each ``{name}`` replaced. Plain replacement, not ``str.format``: a user's template may hold
    other braces, and an answer or caption may hold anything."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template
