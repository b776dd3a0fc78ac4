"""LoRA goes into the language model of every tiny family, never into the vision tower, projector or lm_head.

(``prefgen.train.lora.lora_targets`` is the train layer's; this checks it finds targets on each model family.)"""

import pytest

from .conftest import FAMILIES

NAMES = ["q_proj", "v_proj", "down_proj"]


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_targets_sit_inside_the_language_model_only(family, tiny_vlm_dir):
    from transformers import AutoModelForImageTextToText

    from prefgen.train.lora import lora_targets

    model = AutoModelForImageTextToText.from_pretrained(tiny_vlm_dir(family))
    decoder = model.get_decoder()
    prefix = next(name for name, module in model.named_modules() if module is decoder)
    targets = lora_targets(model, NAMES)
    assert targets and all(t.startswith(prefix + ".") and t.rsplit(".", 1)[-1] in NAMES for t in targets)
    assert not any(word in t for t in targets for word in ("vision", "visual", "projector", "lm_head", "connector"))
    layers = decoder.config.num_hidden_layers
    assert sum(t.endswith("down_proj") for t in targets) == layers  # every layer's MLP
    attention = sum(t.endswith("q_proj") for t in targets)
    # Qwen3.5's linear-attention layers have no q_proj (fused in_proj_qkvz); only its full-attention layers do.
    full = [
        kind
        for kind in getattr(decoder.config, "layer_types", None) or ["full"] * layers
        if kind != "linear_attention"
    ]
    assert attention == len(full)
