"""Where LoRA goes: the language model's attention and MLP projections, wherever the family keeps its language model
(``model.language_model`` in LLaVA and Qwen2-VL, ``model.text_model`` in Idefics3 and SmolVLM). The vision tower,
the projector and ``lm_head`` are never adapted: trl's fused LM head reads ``lm_head.weight`` directly."""

from __future__ import annotations

from prefgen.core.errors import PrefgenError


def lora_targets(model, names: list[str]) -> list[str]:
    """Full names of the Linear modules inside the model's language model whose last name is in ``names``."""
    import torch

    decoder = model.get_decoder()
    prefix = next((name for name, module in model.named_modules() if module is decoder), None)
    if prefix is None:
        raise PrefgenError(f"cannot find the language model inside {type(model).__name__}")
    wanted = set(names)
    found = [
        name
        for name, module in model.named_modules()
        if name.startswith(prefix + ".") and isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] in wanted
    ]
    if not found:
        raise PrefgenError(
            f"no LoRA target in {type(model).__name__}'s language model ({prefix}) is named "
            f"{', '.join(sorted(wanted))}; set train.lora.targets to its projection names"
        )
    return found
