"""The ``<image>`` placeholder that LLaVA-style instruction data writes into its questions (``"<image>\\nWhat is
...?"``), and LLaMA-Factory and ms-swift read as "the next image goes here".

prefgen keeps images in the ``images`` column and texts free of placeholders: the model's processor puts the
image tokens in itself, and counts any ``<image>`` left in the text as one more image (LLaVA's processor then
refuses the prompt: "Found total 2 <image> tokens and 1 images"). So sources take the placeholder out of the
questions they read, and exports write exactly one per image, where the trainer expects it.
"""

from __future__ import annotations

IMAGE_PLACEHOLDER = "<image>"


def strip_placeholders(text: str) -> tuple[str, int]:
    """``text`` without its ``<image>`` placeholders, and how many there were. The whitespace around a placeholder
    goes with it (``"<image>\\nWhat is it?"`` becomes ``"What is it?"``); one in mid-sentence leaves one space."""
    parts = text.split(IMAGE_PLACEHOLDER)
    if len(parts) == 1:
        return text, 0
    kept = [part.strip() for part in parts]
    return " ".join(part for part in kept if part), len(parts) - 1
