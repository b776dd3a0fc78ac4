"""Prompts, and how they become model inputs through the processor's own chat template.

No prompt strings are built by hand per family: the processor renders the conversation (so ``<image>`` placeholders,
vision markers and turn headers are whatever the model was trained with), then tokenizes it with the images.
Continuations (partial answers, answers to score) are tokenized separately and appended as ids, so the boundary
between prompt and answer tokens is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from PIL import Image

from prefgen.core.errors import PrefgenError
from prefgen.models.images import MAX_PIXELS, prepare_image


@dataclass(frozen=True)
class Prompt:
    """One user turn: a text and the images shown with it (placed before the text), with an optional system turn."""

    text: str
    images: tuple[Image.Image, ...] = field(default=())
    system: str | None = None

    def __post_init__(self):
        if not isinstance(self.text, str) or not self.text.strip():
            raise PrefgenError("empty prompt: every prompt needs some text (a question or an instruction)")
        images = self.images
        if isinstance(images, Image.Image):
            images = (images,)
        images = tuple(images)
        for image in images:
            if not isinstance(image, Image.Image):
                raise PrefgenError(f"prompt images must be PIL images, got {type(image).__name__}")
        object.__setattr__(self, "images", images)

    def messages(self) -> list[dict]:
        content = [{"type": "image"} for _ in self.images] + [{"type": "text", "text": self.text}]
        system = [{"role": "system", "content": [{"type": "text", "text": self.system}]}] if self.system else []
        return [*system, {"role": "user", "content": content}]


def as_prompts(prompts: Sequence[Prompt] | Prompt) -> list[Prompt]:
    if isinstance(prompts, Prompt):
        return [prompts]
    prompts = list(prompts)
    for prompt in prompts:
        if not isinstance(prompt, Prompt):
            raise TypeError(f"expected Prompt objects, got {type(prompt).__name__}")
    return prompts


def render(processor, prompt: Prompt) -> str:
    """The prompt as the model sees it, up to and including the assistant turn's header."""
    return processor.apply_chat_template(prompt.messages(), add_generation_prompt=True, tokenize=False)


def encode_prompts(processor, prompts: list[Prompt], device, max_pixels: int = MAX_PIXELS) -> dict:
    """Processor outputs for a batch of prompts: left-padded ids, attention mask, pixel values and friends."""
    texts = [render(processor, prompt) for prompt in prompts]
    bos = getattr(processor.tokenizer, "bos_token", None)
    # Templates that spell out bos (Idefics3, Llama 3) must not get a second one from the tokenizer; this is the
    # rule processor.apply_chat_template(tokenize=True) applies too.
    add_special_tokens = not (bos and all(text.startswith(bos) for text in texts))
    kwargs = dict(text=texts, padding=True, return_tensors="pt", add_special_tokens=add_special_tokens)
    counts = {len(prompt.images) for prompt in prompts}
    if counts != {0}:
        if 0 in counts:
            raise PrefgenError("a batch mixes prompts with and without images; batch them separately")
        kwargs["images"] = [[prepare_image(image, max_pixels) for image in prompt.images] for prompt in prompts]
    inputs = processor(**kwargs)
    return {key: value.to(device) if hasattr(value, "to") else value for key, value in inputs.items()}


def encode_continuation(tokenizer, text: str) -> list[int]:
    """Token ids of an answer (or part of one) as it follows the assistant header, without special tokens."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []
