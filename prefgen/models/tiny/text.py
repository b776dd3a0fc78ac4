"""Tokenizers and chat templates for the tiny offline models (``prefgen models tiny``).

Two tokenizer styles, because the model runtime must not depend on either:
- ``metaspace``: sentencepiece-like BPE with byte fallback (``▁`` marks a word start, the decoder strips the first
  space), as in Llama / LLaVA-1.5. Decoding a lone word token drops its leading space, the classic trap for code that
  decodes generated tokens piecewise.
- ``bytelevel``: GPT-2 style byte-level BPE, as in Qwen2 and SmolLM.

Both are trained here, offline and deterministically, on a few sentences about images; any text still encodes
(bytes), so nothing is ever ``<unk>``. The chat templates mirror the real families' formats closely enough that the
runtime's template handling is exercised (generation prompt, bos in the template, end-of-turn tokens).
"""

from __future__ import annotations

import json

CORPUS = (
    "The image shows a red square on a white background. There is a blue circle next to it.",
    "A small green triangle is in the corner of the picture. Is it near the top? Yes, it is!",
    "Describe the image in detail. What color is the object? The object is yellow.",
    "Two cats sit on a wooden table, and a dog sleeps under the chair. The sky is clear.",
    "The photo was taken at 3.5 meters from the door. Dr. Smith stands near a tall tree.",
    "Look at the image and answer the question using a single word or phrase.",
    "Please look at the image and generate a question related to the content of the image.",
    "A person holds an umbrella in the rain. The street is wet, and the lights are bright.",
    "There are four apples, three oranges and one banana in the bowl on the kitchen counter.",
    "Is there a car in the image? No. Where is the bird? It is on the roof of the house.",
)

# Special tokens shared by every family, then each family's multimodal and turn markers.
BASE_SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")
FAMILY_SPECIALS = {
    "llava": ("<image>",),
    "qwen2_vl": (
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<|vision_start|>",
        "<|vision_end|>",
        "<|image_pad|>",
        "<|video_pad|>",
    ),
    "idefics3": (
        "<|begin_of_text|>",
        "<end_of_utterance>",
        "<fake_token_around_image>",
        "<image>",
        "<global-img>",
        *(f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)),
    ),
    "smolvlm": (
        "<|im_start|>",
        "<end_of_utterance>",
        "<fake_token_around_image>",
        "<image>",
        "<global-img>",
        "<video>",
        *(f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)),
    ),
}
FAMILY_SPECIALS["qwen2_5_vl"] = FAMILY_SPECIALS["qwen3_vl"] = FAMILY_SPECIALS["qwen3_5"] = FAMILY_SPECIALS["qwen2_vl"]
FAMILY_SPECIALS.update(
    {
        "gemma3": (
            "<bos>",
            "<start_of_turn>",
            "<end_of_turn>",
            "<start_of_image>",
            "<end_of_image>",
            "<image_soft_token>",
        ),
        "llava_onevision": ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"),
        "internvl": ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>", "<video>"),
        "mistral3": ("[INST]", "[/INST]", "[IMG]", "[IMG_BREAK]", "[IMG_END]"),
    }
)

# Gemma's vocabulary has runs of newlines as tokens of their own, and vLLM's Gemma 3 processor looks them up.
GEMMA3_NEWLINES = ("\n", "\n\n", "\n\n\n", "\n\n\n\n")

# (tokenizer style, bos, eos = end of turn, pad, add bos when encoding)
FAMILY_TOKENS = {
    "llava": ("metaspace", "<s>", "</s>", "<pad>", True),
    "qwen2_vl": ("bytelevel", None, "<|im_end|>", "<|endoftext|>", False),
    "qwen2_5_vl": ("bytelevel", None, "<|im_end|>", "<|endoftext|>", False),
    "idefics3": ("bytelevel", "<|begin_of_text|>", "<end_of_utterance>", "<pad>", True),
    "smolvlm": ("bytelevel", None, "<end_of_utterance>", "<pad>", False),
    "qwen3_vl": ("bytelevel", None, "<|im_end|>", "<|endoftext|>", False),
    "qwen3_5": ("bytelevel", None, "<|im_end|>", "<|endoftext|>", False),
    "gemma3": ("metaspace", "<bos>", "<end_of_turn>", "<pad>", True),
    "llava_onevision": ("bytelevel", None, "<|im_end|>", "<|endoftext|>", False),
    "internvl": ("bytelevel", None, "<|im_end|>", "<|endoftext|>", False),
    "mistral3": ("metaspace", "<s>", "</s>", "<pad>", True),
}

# Jinja templates. transformers renders with trim_blocks, so newlines are written as {{ '\n' }} expressions.
_LLAVA = (
    "{% for message in messages %}"
    "{% if message['role'] != 'system' %}{{ message['role'].upper() + ': ' }}{% endif %}"
    "{% if message['content'] is string %}{{ message['content'] + ' ' }}{% else %}"
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}{{ '<image>\\n' }}{% endif %}{% endfor %}"
    "{% for item in message['content'] %}{% if item['type'] == 'text' %}{{ item['text'] + ' ' }}{% endif %}"
    "{% endfor %}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)
_QWEN = (
    "{% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{% endif %}{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{ '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
_IDEFICS_BODY = (
    "{% for message in messages %}{{ message['role'] | capitalize }}"
    "{% if message['content'] is not string and message['content'][0]['type'] == 'image' %}{{ ':' }}"
    "{% else %}{{ ': ' }}{% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for line in message['content'] %}"
    "{% if line['type'] == 'text' %}{{ line['text'] }}{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}"
    "{% endfor %}{% endif %}{{ '<end_of_utterance>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
# Gemma 3: turns are "user" and "model"; an image is its begin-of-image marker (the processor expands it).
_GEMMA3 = (
    "{{ '<bos>' }}{% for message in messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}{{ '<start_of_image>' }}{% elif item['type'] == 'text' %}{{ item['text'] }}"
    "{% endif %}{% endfor %}{% endif %}{{ '<end_of_turn>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)


def _chatml(image: str) -> str:
    """A ChatML template (Qwen2 language models) whose image placeholder is ``image``."""
    return (
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}"
        "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for item in message['content'] %}"
        "{% if item['type'] == 'image' %}{{ '" + image + "' }}"
        "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}{% endif %}"
        "{{ '<|im_end|>\\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    )


# Mistral 3 (Pixtral-style): [INST] ... [/INST] around the user turn, images as [IMG] placeholders.
_MISTRAL3 = (
    "{{ '<s>' }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST]' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}{{ '[IMG]' }}{% endif %}{% endfor %}"
    "{% for item in message['content'] %}{% if item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}"
    "{% endif %}{{ '[/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] if message['content'] is string "
    "else message['content'][0]['text'] }}{{ '</s>' }}{% endif %}{% endfor %}"
)

CHAT_TEMPLATES = {
    "llava": _LLAVA,
    "qwen2_vl": _QWEN,
    "qwen2_5_vl": _QWEN,
    "idefics3": "{{ '<|begin_of_text|>' }}" + _IDEFICS_BODY,
    "smolvlm": "{{ '<|im_start|>' }}" + _IDEFICS_BODY,
    "qwen3_vl": _QWEN,
    "qwen3_5": _QWEN,
    "gemma3": _GEMMA3,
    "llava_onevision": _chatml("<image>\\n"),
    "internvl": _chatml("<IMG_CONTEXT>\\n"),
    "mistral3": _MISTRAL3,
}


def build_tokenizer(family: str, vocab_size: int = 480):
    """A trained, deterministic ``PreTrainedTokenizerFast`` for ``family`` with its specials and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    style, bos, eos, pad, add_bos = FAMILY_TOKENS[family]
    specials = list(dict.fromkeys([*BASE_SPECIALS, *FAMILY_SPECIALS[family]]))
    if style == "bytelevel":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tok.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    else:
        tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
        tok.decoder = decoders.Sequence(
            [
                decoders.Replace("▁", " "),
                decoders.ByteFallback(),
                decoders.Fuse(),
                decoders.Strip(content=" ", left=1, right=0),
            ]
        )
        alphabet = []
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=alphabet, show_progress=False
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    if style == "metaspace":
        tok = _with_byte_fallback_tokens(tok, GEMMA3_NEWLINES if family == "gemma3" else ())
    if add_bos:
        bos_id = tok.token_to_id(bos)
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)]
        )
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=eos,
        pad_token=pad,
        unk_token="<unk>",
        padding_side="left",
        chat_template=CHAT_TEMPLATES[family],
        extra_special_tokens=_named_extra_tokens(family),
    )
    return wrapped


def _with_byte_fallback_tokens(tok, extra: tuple[str, ...] = ()):
    """Add the 256 ``<0xNN>`` tokens byte fallback needs (the BPE trainer does not create them), and ``extra``."""
    from tokenizers import Tokenizer

    data = json.loads(tok.to_str())
    vocab = data["model"]["vocab"]
    for byte in range(256):
        vocab.setdefault(f"<0x{byte:02X}>", len(vocab))
    for token in extra:
        vocab.setdefault(token, len(vocab))
    data["model"]["byte_fallback"] = True
    return Tokenizer.from_str(json.dumps(data))


def _named_extra_tokens(family: str) -> dict[str, str]:
    """Attributes the processors look up on the tokenizer (``tokenizer.image_token`` and friends)."""
    if family in ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_5"):
        return {
            "image_token": "<|image_pad|>",
            "video_token": "<|video_pad|>",
            "vision_bos_token": "<|vision_start|>",
            "vision_eos_token": "<|vision_end|>",
        }
    if family == "smolvlm":
        return {
            "image_token": "<image>",
            "video_token": "<video>",
            "fake_image_token": "<fake_token_around_image>",
            "global_image_token": "<global-img>",
            "end_of_utterance_token": "<end_of_utterance>",
        }
    if family == "gemma3":
        return {"image_token": "<image_soft_token>", "boi_token": "<start_of_image>", "eoi_token": "<end_of_image>"}
    if family == "llava_onevision":
        return {"image_token": "<image>", "video_token": "<video>"}
    if family == "internvl":
        return {
            "start_image_token": "<img>",
            "end_image_token": "</img>",
            "context_image_token": "<IMG_CONTEXT>",
            "video_token": "<video>",
        }
    if family == "mistral3":
        return {"image_token": "[IMG]", "image_break_token": "[IMG_BREAK]", "image_end_token": "[IMG_END]"}
    return {"image_token": "<image>"}
