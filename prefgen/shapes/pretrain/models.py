"""The shapes-world models' architectures and files: a word-level tokenizer, a tiny open_clip CLIP and a tiny LLaVA.

Both are standard classes saved in their libraries' own layouts, so the ordinary runtime loads them with no special
case: the LLaVA through ``AutoProcessor`` / ``AutoModelForImageTextToText`` (``prefgen.models.VLM.load``), the CLIP
as an open_clip ``local-dir`` whose config names a Hugging Face tokenizer stored beside it
(``prefgen.models.ClipScorer.load``).

The tokenizer is word-level (the world has a few dozen words; a BPE would waste the tiny models' capacity on
spelling) with punctuation split off and sentencepiece-style word starts (``▁``), so it decodes to ordinary text
("a red circle, a blue square."). Words it has never seen become ``<unk>``.

The LLaVA's vision tower has exactly the CLIP ViT's shape, so it starts from the trained CLIP weights
(``load_vision_from_clip``: the mapping is exact with ``hidden_act="gelu"`` and open_clip's fused q/k/v split).
"""

from __future__ import annotations

import json
from pathlib import Path

from prefgen.models.tiny.text import CHAT_TEMPLATES

IMAGE_SIZE, PATCH = 64, 8
IMAGE_TOKENS = (IMAGE_SIZE // PATCH) ** 2  # LLaVA "default" strategy drops the CLS token
SPECIALS = ("<pad>", "<unk>", "<s>", "</s>", "<image>")  # eos id 3, see stack.md (CLIP's legacy eos == 2 pooling)
VISION = dict(width=96, layers=3, head_width=32, mlp_ratio=4.0)
# The LLaVA reads the tower's last block (hidden state 3), whose patch tokens the CLIP trains on per-patch kinds.
# Reading the first block, the VLM cannot bind a colour to a shape ("what color is the square?" stays near chance);
# the last block makes QA and counting learnable. The prior still shows because the data teaches it: captions and
# answers about a hidden companion name it (``data.hide_companions``). See docs/shapes-world.md.
VISION_FEATURE_LAYER = 3
TEXT = dict(
    hidden_size=128,
    intermediate_size=256,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=4,
    max_position_embeddings=512,
)
CLIP_TEXT = dict(context_length=32, width=64, heads=2, layers=2)
CLIP_EMBED = 64
POOL = "avg"
MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP's normalisation, used by both models
STD = (0.26862954, 0.26130258, 0.27577711)
TOKENIZER_NAME = "prefgen-shapes-words"  # open_clip loads it from the local-dir, whatever the name

# The llava-1.5 layout ("USER: <image>\n... ASSISTANT:"), except that an assistant turn ends with the eos token, as
# the VLM's SFT ends every answer. (llava's own template ends it with a space, so trl's training completions would
# end with a token the model never learnt to emit; `prefgen models check` warns of such templates.)
CHAT_TEMPLATE = (
    CHAT_TEMPLATES["llava"]
    .replace(
        "{{ message['content'] + ' ' }}",
        "{{ message['content'] + (eos_token if message['role'] == 'assistant' else ' ') }}",
    )
    .replace("{{ item['text'] + ' ' }}", "{{ item['text'] + (eos_token if message['role'] == 'assistant' else ' ') }}")
)


# ------------------------------------------------------------------------------------------------ tokenizer


def _pre_tokenizer():
    from tokenizers import normalizers, pre_tokenizers

    # newlines (from chat templates and prompts) are plain spaces to a word-level model
    normalizer = normalizers.Replace("\n", " ")
    pre = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True),
            pre_tokenizers.Punctuation(behavior="isolated"),
        ]
    )
    return normalizer, pre


def vocabulary(texts) -> list[str]:
    """Specials, then every word and punctuation mark of ``texts`` in sorted order (deterministic ids)."""
    normalizer, pre = _pre_tokenizer()
    words = {piece for text in texts for piece, _ in pre.pre_tokenize_str(normalizer.normalize_str(text))}
    return [*SPECIALS, "▁", *sorted(words - set(SPECIALS) - {"▁"})]


def build_tokenizer(vocab: list[str], *, for_clip: bool = False):
    """A ``PreTrainedTokenizerFast``: for the VLM, bos first, left padding and LLaVA's chat template; for CLIP,
    eos last (open_clip pools the text at eos) and right padding."""
    from tokenizers import Tokenizer, decoders, models, processors
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({word: i for i, word in enumerate(vocab)}, unk_token="<unk>"))
    tok.normalizer, tok.pre_tokenizer = _pre_tokenizer()
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.add_special_tokens(list(SPECIALS))
    if for_clip:
        tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 3)])
    else:
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 2)]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        padding_side="right" if for_clip else "left",
        clean_up_tokenization_spaces=False,
        chat_template=None if for_clip else CHAT_TEMPLATE,
        extra_special_tokens={} if for_clip else {"image_token": "<image>"},
    )


# ------------------------------------------------------------------------------------------------ CLIP


def clip_config(vocab_size: int) -> dict:
    """open_clip ``model_cfg``: ViT 64 px / patch 8 of the VLM tower's shape; a word-level text tower."""
    return {
        "embed_dim": CLIP_EMBED,
        # average-pooled patch tokens: the CLIP loss then reaches every last-layer patch token, the features LLaVA
        # reads (with CLS pooling only the CLS token's path is trained directly)
        "vision_cfg": {"image_size": IMAGE_SIZE, "patch_size": PATCH, "pool_type": POOL, **VISION},
        "text_cfg": {
            **CLIP_TEXT,
            "vocab_size": vocab_size,
            "pool_type": "eos",
            "eos_id": 3,
            "pad_id": 0,
            "hf_tokenizer_name": TOKENIZER_NAME,
        },
    }


def new_clip(config: dict):
    import open_clip

    return open_clip.CLIP(**config)


def save_clip(model, config: dict, tokenizer, out: str | Path) -> Path:
    """open_clip's ``local-dir`` layout: ``open_clip_config.json``, ``open_clip_model.safetensors`` and the
    tokenizer files (open_clip's ``get_tokenizer`` reads them from the same folder)."""
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(out / "open_clip_model.safetensors")
    )
    preprocess = {"mean": list(MEAN), "std": list(STD), "interpolation": "bicubic", "resize_mode": "shortest"}
    (out / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": config, "preprocess_cfg": preprocess}, indent=2), encoding="utf-8"
    )
    tokenizer.save_pretrained(out)
    return out


def load_clip(folder: str | Path):
    """A saved shapes CLIP (``save_clip``'s layout) as an ``open_clip.CLIP``."""
    import open_clip
    from safetensors.torch import load_file

    folder = Path(folder)
    config = json.loads((folder / "open_clip_config.json").read_text(encoding="utf-8"))["model_cfg"]
    model = open_clip.CLIP(**config)
    model.load_state_dict(load_file(str(folder / "open_clip_model.safetensors")))
    return model.eval()


def clip_token_ids(tokenizer, context_length: int):
    """Token ids exactly as open_clip's HFTokenizer makes them at inference, but unpadded (see ``encode_texts``)."""
    cache: dict[str, list[int]] = {}

    def encode(texts: list[str]) -> list[list[int]]:
        missing = [t for t in dict.fromkeys(texts) if t not in cache]
        if missing:
            ids = tokenizer(missing, max_length=context_length, truncation=True).input_ids
            cache.update(zip(missing, ids))
        return [cache[t] for t in texts]

    return encode


def encode_texts(model, token_lists: list[list[int]]):
    """``model.encode_text`` of the texts, run per group of equal length with no padding. Equal to encoding them
    padded to the context length (the text tower is causal and pools at eos, so padding after eos changes
    nothing), at a fraction of the cost: phrases are 4 tokens, captions at most ~20, the context 32."""
    import torch
    from open_clip.transformer import text_global_pool

    order: dict[int, list[int]] = {}
    for i, ids in enumerate(token_lists):
        order.setdefault(len(ids), []).append(i)
    out = [None] * len(token_lists)
    for length, rows in order.items():
        text = torch.tensor([token_lists[i] for i in rows])
        x = model.token_embedding(text) + model.positional_embedding[:length]
        x = model.ln_final(model.transformer(x, attn_mask=model.attn_mask[:length, :length]))
        x = text_global_pool(x, text, model.text_pool_type, eos_token_id=model.text_eos_id) @ model.text_projection
        for i, row in zip(rows, x):
            out[i] = row
    return torch.stack(out)


# ------------------------------------------------------------------------------------------------ VLM


def build_vlm(tokenizer, seed: int = 0, text: dict | None = None, feature_layer: int | list[int] | None = None):
    """A randomly initialised ``LlavaForConditionalGeneration`` and its ``LlavaProcessor``: the language model's
    size from ``text`` (default ``TEXT``), the vision block(s) it reads from ``feature_layer``
    (default ``VISION_FEATURE_LAYER``)."""
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        GenerationConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    image_processor = CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE},
        image_mean=list(MEAN),
        image_std=list(STD),
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=PATCH,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=tokenizer.chat_template,
        image_token="<image>",
    )
    width = VISION["width"]
    vision = CLIPVisionConfig(
        hidden_size=width,
        intermediate_size=int(width * VISION["mlp_ratio"]),
        num_hidden_layers=VISION["layers"],
        num_attention_heads=width // VISION["head_width"],
        image_size=IMAGE_SIZE,
        patch_size=PATCH,
        hidden_act="gelu",
        projection_dim=CLIP_EMBED,
    )
    ids = dict(
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id
    )
    text_config = LlamaConfig(**{**TEXT, **(text or {})}, vocab_size=len(tokenizer), **ids)
    layer = VISION_FEATURE_LAYER if feature_layer is None else feature_layer
    config = LlavaConfig(
        vision_config=vision,
        text_config=text_config,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        image_seq_length=IMAGE_TOKENS,
        vision_feature_select_strategy="default",
        vision_feature_layer=layer,
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    model.generation_config = GenerationConfig(**ids, do_sample=False)
    return model, processor


def load_vision_from_clip(vlm, clip_model) -> None:
    """Copy the open_clip ViT into the LLaVA's HF ``CLIPVisionModel`` (exact: same outputs to float precision)."""
    tower = vlm.model.vision_tower
    tower.load_state_dict(open_clip_to_hf_vision(clip_model.visual.state_dict(), VISION["layers"]), strict=True)


def open_clip_to_hf_vision(v: dict, layers: int) -> dict:
    """open_clip ``VisionTransformer`` state dict -> transformers ``CLIPVisionModel`` state dict (its own keys)."""
    out = {
        "embeddings.class_embedding": v["class_embedding"],
        "embeddings.patch_embedding.weight": v["conv1.weight"],
        "embeddings.position_embedding.weight": v["positional_embedding"],
        "pre_layrnorm.weight": v["ln_pre.weight"],
        "pre_layrnorm.bias": v["ln_pre.bias"],
        "post_layernorm.weight": v["ln_post.weight"],
        "post_layernorm.bias": v["ln_post.bias"],
    }
    for i in range(layers):
        src, dst = f"transformer.resblocks.{i}.", f"encoder.layers.{i}."
        for name, tensor in zip("qkv", v[src + "attn.in_proj_weight"].chunk(3)):
            out[f"{dst}self_attn.{name}_proj.weight"] = tensor
        for name, tensor in zip("qkv", v[src + "attn.in_proj_bias"].chunk(3)):
            out[f"{dst}self_attn.{name}_proj.bias"] = tensor
        pairs = {
            "attn.out_proj": "self_attn.out_proj",
            "ln_1": "layer_norm1",
            "ln_2": "layer_norm2",
            "mlp.c_fc": "mlp.fc1",
            "mlp.c_proj": "mlp.fc2",
        }
        for a, b in pairs.items():
            out[f"{dst}{b}.weight"], out[f"{dst}{b}.bias"] = v[f"{src}{a}.weight"], v[f"{src}{a}.bias"]
    return {k: t.detach().clone() for k, t in out.items()}


def save_vlm(model, processor, out: str | Path, readme: str = "") -> Path:
    out = Path(out)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    if readme:
        (out / "README.md").write_text(readme, encoding="utf-8")
    return out
