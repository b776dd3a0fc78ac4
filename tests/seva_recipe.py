"""The SeVa recipe the executor and engine tests build on the shipped shapes VLM: answer, noise the image, answer
again (sampled), pair; over example scenes copied into a folder with their questions as a manifest."""

import json
import shutil
from pathlib import Path

ROOT = Path(__file__).parents[1]
SHAPES_VLM = ROOT / "prefgen" / "shapes" / "checkpoints" / "shapes-vlm"

SEVA = """\
name: {name}
seed: 0
source:
  type: manifest
  path: {folder}/questions.jsonl
  image_column: image
  question_column: question
models:
  vlm: {{path: {vlm}, dtype: float32, device: cpu, engine: {engine}}}
stages:
  - type: answer
    output: clean_answer
    max_new_tokens: 12
  - type: corrupt
    ops:
      - {{op: diffusion_noise, t: 600, space: normalized}}
  - type: answer_corrupted
    max_new_tokens: 12
    temperature: 1.0
  - type: select_pairs
    chosen: clean_answer
    rejected: corrupted_answer
    method: seva
    drop_yes_no: false
    drop_rejected_in_chosen: false
    drop_duplicate_sentences: false
    max_non_alnum_fraction: 1.0
output:
  store: {folder}/store
"""


def seva_recipe(folder: Path, file: str, *, name: str, engine: str = "hf", n: int = 8, broken: bool = False) -> Path:
    """``folder/file``: the recipe over the first ``n`` example scenes, plus (``broken``) a file that is not an
    image, a counted drop."""
    examples = ROOT / "examples" / "shapes"
    lines = [json.loads(line) for line in (examples / "questions.jsonl").read_text().splitlines()][:n]
    for line in lines:
        shutil.copy(examples / line["image"], folder / line["image"])
    if broken:
        (folder / "broken.png").write_bytes(b"not an image")
        lines.append({"image": "broken.png", "question": "What is this?"})
    (folder / "questions.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    path = folder / file
    path.write_text(SEVA.format(name=name, folder=folder, vlm=SHAPES_VLM, engine=engine))
    return path
