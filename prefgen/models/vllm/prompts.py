"""Prompts as the vLLM engine hands them over: rendered and tokenized once, with each image's content key."""

from __future__ import annotations

import hashlib

from prefgen.models.prompts import Prompt


class RenderedPrompts:
    """Prompts rendered and tokenized once (the counterpart of the transformers engine's ``EncodedPrompts``); vLLM's
    prefix cache keeps their computed state across calls."""

    def __init__(self, prompts: list[Prompt], token_ids: list[list[int]], images: list[list]):
        self.prompts, self.token_ids, self.images = prompts, token_ids, images
        # each image's content hash, computed once: vLLM then finds its processed form in its cache by this name
        # instead of hashing the pixels again for every request (CSR asks for the same image hundreds of times)
        self.image_keys = [[_image_key(image) for image in row] for row in images]

    def media(self, row: int) -> tuple[list, list[str]]:
        """Prompt ``row``'s images and their content keys."""
        return self.images[row], self.image_keys[row]

    def __len__(self) -> int:
        return len(self.prompts)


def _image_key(image) -> str:
    digest = hashlib.sha256(image.tobytes())
    digest.update(f"{image.mode}{image.size}".encode())
    return digest.hexdigest()[:32]
