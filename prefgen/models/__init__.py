"""The model runtime every stage talks to: a VLM (generation, sentence steps, log-probs) and a CLIP scorer.

    from prefgen.models import ClipScorer, Prompt, load_vlm
    vlm = load_vlm(recipe.models.vlm)              # the recipe's engine: transformers (VLM) or vLLM (VllmVLM)
    answers = vlm.generate([Prompt("Describe the image.", image)], max_new_tokens=128)
    clip = ClipScorer.load(recipe.models.clip)     # any open_clip model + pretrained tag, or a local checkpoint
    scores = clip.score([image], [answers[0][0].text])

Importing this package is cheap: it only arranges for the torchvision shim (``prefgen._compat.tvshim``) to run before
torchvision is first imported; torch, transformers and open_clip load when a name below is first used.
"""

from prefgen._compat import tvshim as _tvshim

_tvshim.install()

_EXPORTS = {
    "VLM": "prefgen.models.hf.vlm",
    "VllmVLM": "prefgen.models.vllm.engine",
    "load_vlm": "prefgen.models.runtime",
    "EncodedPrompts": "prefgen.models.hf.vlm",
    "ContinuationLogprobs": "prefgen.models.candidates",
    "Candidate": "prefgen.models.candidates",
    "Prompt": "prefgen.models.prompts",
    "ClipScorer": "prefgen.models.clip",
    "ClipScore": "prefgen.models.clip",
    "prepare_image": "prefgen.models.images",
    "to_rgb": "prefgen.models.images",
    "find_sentence_end": "prefgen.models.sentences",
    "build_tiny_vlm": "prefgen.models.tiny.families",
    "build_tiny_clip": "prefgen.models.tiny.families",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'prefgen.models' has no attribute {name!r}")
