"""Which VLM families run on the vLLM engine here: each family's tiny model (``prefgen models tiny``) through both
engines, greedy, on two images. Prints one line per family (runs, and whether vLLM's tokens are the transformers
engine's, or the first line of the error) and, with ``--json FILE``, writes them; the table in
``prefgen/models/vllm/support.py`` (FAMILIES) is this script's output.

    .venv/bin/python scripts/vllm_families.py [--json out/vllm-families.json] [FAMILY ...]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def main() -> None:
    from PIL import Image

    from prefgen.models import VLM, Prompt, VllmVLM
    from prefgen.models.tiny.families import FAMILIES, build_tiny_vlm

    parser = argparse.ArgumentParser()
    parser.add_argument("families", nargs="*", default=list(FAMILIES))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    prompts = [Prompt("Describe the image.", (Image.new("RGB", (56, 56), c),)) for c in ("red", "blue")]
    results = {}
    with tempfile.TemporaryDirectory() as root:
        for family in args.families:
            folder = build_tiny_vlm(family, Path(root) / family)
            expected = VLM.load(path=folder, dtype="float32", device="cpu").generate(prompts, max_new_tokens=12)
            try:
                engine = VllmVLM.load(path=folder, dtype="float32", device="cpu")
                found = engine.generate(prompts, max_new_tokens=12)
                same = [c.token_ids for (c,) in found] == [c.token_ids for (c,) in expected]
                results[family] = {"runs": True, "same_tokens": same}
                engine.close()
            except Exception as exc:  # a family that does not run: its reason is the result
                results[family] = {"runs": False, "error": " ".join(str(exc).split())[:300]}
            print(family, json.dumps(results[family]), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
