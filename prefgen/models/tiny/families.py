"""Tiny random models, built offline, for tests, benchmarks and trying a recipe end to end without downloads.

``build_tiny_vlm(family, out)`` writes a complete Hugging Face model folder (config, random weights, processor,
tokenizer trained offline, chat template) for one of the supported VLM families; ``build_tiny_clip(out)`` writes an
open_clip ``local-dir`` folder. Both reload through the same code paths as real models: ``VLM.load(path=...)``
(``AutoProcessor`` + ``AutoModelForImageTextToText``) and ``ClipScorer.load(path=...)``.

The weights are random (seeded), so the models produce fluent-looking nonsense: they exercise shapes, templates,
caches, padding and tokenizers, never quality. Each has a few hundred thousand parameters and builds in about a
second on a laptop CPU. ``prefgen models tiny`` is the command-line entry point.
"""

from __future__ import annotations

import json
from pathlib import Path

from prefgen.models.tiny.configs import BUILDERS
from prefgen.models.tiny.text import FAMILY_TOKENS, build_tokenizer

FAMILIES = (
    "llava",
    "qwen2_vl",
    "qwen2_5_vl",
    "idefics3",
    "smolvlm",
    "gemma3",
    "llava_onevision",
    "qwen3_vl",
    "internvl",
    "mistral3",
    "qwen3_5",
)
TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
    # open_clip's own BPE tokenizer needs its full 49408-token vocabulary and 77-token context.
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 2},
}


def build_tiny_vlm(family: str, out: str | Path, seed: int = 0) -> Path:
    """Write a tiny random ``family`` VLM (model + processor) to ``out`` and return the folder."""
    import torch
    from transformers import GenerationConfig

    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")
    out = Path(out)
    tokenizer = build_tokenizer(family)
    processor, config = BUILDERS[family](tokenizer)
    torch.manual_seed(seed)
    model = _model_class(family)(config).eval()
    _, bos, eos, pad, _ = FAMILY_TOKENS[family]
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.convert_tokens_to_ids(bos) if bos else None,
        eos_token_id=tokenizer.convert_tokens_to_ids(eos),
        pad_token_id=tokenizer.convert_tokens_to_ids(pad),
        do_sample=False,
    )
    model.save_pretrained(out)
    processor.save_pretrained(out)
    (out / "README.md").write_text(
        f"# tiny random {family} VLM (prefgen)\n\nRandom weights, seed {seed}, tokenizer trained offline. Built by "
        "`prefgen models tiny` for tests and offline trials; it generates nonsense by design.\n",
        encoding="utf-8",
    )
    return out


def build_tiny_clip(out: str | Path, seed: int = 0) -> Path:
    """Write a tiny random open_clip model as a ``local-dir`` folder (config + safetensors) and return it."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = open_clip.CLIP(**TINY_CLIP_CONFIG)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / "open_clip_model.safetensors"))
    preprocess = {
        "mean": [0.48145466, 0.4578275, 0.40821073],
        "std": [0.26862954, 0.26130258, 0.27577711],
        "interpolation": "bicubic",
        "resize_mode": "shortest",
    }
    (out / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": TINY_CLIP_CONFIG, "preprocess_cfg": preprocess}, indent=2), encoding="utf-8"
    )
    return out


MODEL_CLASSES = {
    "llava": "LlavaForConditionalGeneration",
    "qwen2_vl": "Qwen2VLForConditionalGeneration",
    "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
    "idefics3": "Idefics3ForConditionalGeneration",
    "smolvlm": "SmolVLMForConditionalGeneration",
    "gemma3": "Gemma3ForConditionalGeneration",
    "llava_onevision": "LlavaOnevisionForConditionalGeneration",
    "qwen3_vl": "Qwen3VLForConditionalGeneration",
    "internvl": "InternVLForConditionalGeneration",
    "mistral3": "Mistral3ForConditionalGeneration",
    "qwen3_5": "Qwen3_5ForConditionalGeneration",
}


def _model_class(family: str):
    import transformers

    return getattr(transformers, MODEL_CLASSES[family])
