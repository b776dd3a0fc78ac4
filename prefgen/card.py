"""The store's dataset card (README.md). Its YAML header is what makes ``datasets.load_dataset(store)`` and the Hub
viewer find the data: one config per version, and ``default`` pointing at the latest."""

from __future__ import annotations

import yaml

from prefgen.manifest import Manifest


def card_configs(manifests: list[Manifest]) -> list[dict]:
    def config(name: str, version: str) -> dict:
        return {"config_name": name, "data_files": [{"split": "train", "path": f"data/{version}/*.parquet"}]}

    if not manifests:
        return []
    latest = manifests[-1].version
    return [config("default", latest)] + [config(m.version, m.version) for m in reversed(manifests)]


def card_infos(manifests: list[Manifest]) -> list[dict]:
    """Sizes per config. Besides informing readers, they make datasets' cache key differ between stores that share
    a folder name and version names: datasets hashes the card's configs and infos, not the files, for local folders."""

    def info(name: str, m: Manifest) -> dict:
        size = sum(f.bytes for f in m.files)  # datasets wants num_bytes in a split; the parquet size stands in
        return {"config_name": name, "download_size": size,
                "splits": [{"name": "train", "num_bytes": size, "num_examples": m.rows}]}

    if not manifests:
        return []
    return [info("default", manifests[-1])] + [info(m.version, m) for m in reversed(manifests)]


def render_card(title: str, manifests: list[Manifest]) -> str:
    header = {
        "configs": card_configs(manifests),
        "dataset_info": card_infos(manifests),
        "tags": ["prefgen", "dpo", "preference", "vision-language", "synthetic"],
        "task_categories": ["image-text-to-text"],
    }
    lines = [
        "---",
        yaml.safe_dump(header, sort_keys=False).rstrip(),
        "---",
        f"# {title}",
        "",
        "Preference pairs for aligning vision-language models, built with prefgen.",
        "Each row holds `images`, `prompt`, `chosen` and `rejected` in the conversational format trl's",
        "`DPOTrainer` reads, plus scores and provenance columns.",
        "",
        "## Versions",
        "",
        "| version | rows | parent | created (UTC) | origin | message |",
        "|---|---|---|---|---|---|",
    ]
    for m in reversed(manifests):
        message = m.message.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {m.version} | {m.rows} | {m.parent or ''} | {m.created_at:%Y-%m-%d %H:%M} | "
                     f"{m.origin} | {message} |")
    latest = manifests[-1].version if manifests else "<version>"
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "from datasets import load_dataset",
        f'pairs = load_dataset("<this repo or folder>", "{latest}", split="train")  # or the default config = latest',
        "# trl.DPOTrainer(model=..., train_dataset=pairs, processing_class=processor, args=DPOConfig(max_length=None))",
        "```",
        "",
        "Each version's manifest (recipe, models, seeds, counts, fingerprints) is in `versions/<version>.json`.",
        "",
    ]
    return "\n".join(lines)
