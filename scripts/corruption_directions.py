"""Which way each corruption moves a VLM's counts: the label-free direction bias behind `corrupt`'s `choose: one`.

    python scripts/corruption_directions.py [--model DIR] [--n 150] [--seed 1]

Draws `n` shapes scenes (eval split, `seed`; 1 is the validation split), asks the model "How many <shape>s are
there?" about one shape of each scene (SENA's short-answer suffix), on the clean image and on each corruption, and
prints how often the corrupted image's number is higher, lower or the same as the clean one's. No ground truth
judges anything: a corruption whose answers err only upwards gives rejected answers with a fixed direction.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SUFFIX = "\nLook at the image and answer the question using a single word or phrase."
CORRUPTIONS = {
    "diffusion noise, t = 600 (SENA)": [{"op": "diffusion_noise", "t": 600, "space": "normalized"}],
    "random resized crop, scale 0.3-0.6": [{"op": "random_resized_crop", "scale": (0.3, 0.6)}],
    "random resized crop, scale 0.1-0.3": [{"op": "random_resized_crop", "scale": (0.1, 0.3)}],
    "random resized crop, scale 0.02-0.1": [{"op": "random_resized_crop", "scale": (0.02, 0.1)}],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "prefgen/shapes/checkpoints/shapes-vlm-early"))
    parser.add_argument("--n", type=int, default=150)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from PIL import Image
    from pydantic import TypeAdapter

    from prefgen.models import VLM, Prompt
    from prefgen.shapes.world import read_ground_truth, write_scene_folder
    from prefgen.stages.corrupt.ops import CorruptionOp
    from prefgen.stages.corrupt.pixels import apply_corruption, describe_corruption
    from prefgen.stages.pair_text import count_direction

    vlm = VLM.load(path=args.model, device="cpu", dtype="float32")
    with tempfile.TemporaryDirectory() as folder:
        write_scene_folder(Path(folder), args.n, seed=args.seed, split="eval")
        scenes = read_ground_truth(Path(folder) / "ground_truth.jsonl")
        files = sorted(Path(folder).glob("*.png"))
        images = [Image.open(path).convert("RGB") for path in files]
        questions = [f"How many {scenes[path.name].objects[0].shape}s are there?" for path in files]

    def answers(pictures):
        prompts = [Prompt(q + SUFFIX, (image,)) for q, image in zip(questions, pictures)]
        return [found[0].text for found in vlm.generate(prompts, max_new_tokens=8)]

    clean = answers(images)
    ops = TypeAdapter(list[CorruptionOp])
    print(
        f"{len(images)} questions, eval split seed {args.seed}: the corrupted image's number against the clean one's"
    )
    for name, spec in CORRUPTIONS.items():
        corrupted = [
            apply_corruption(im, describe_corruption(ops.validate_python(spec), i)) for i, im in enumerate(images)
        ]
        found = [d for d in map(count_direction, clean, answers(corrupted)) if d is not None]
        print(f"  {name}: higher {found.count(1)}, lower {found.count(-1)}, same {found.count(0)}")


if __name__ == "__main__":
    main()
