"""What the trainer drivers compare with: the version's rows as prefgen stored them (its ``jsonl`` export, every
column as it is, image paths relative to that export). Standard library only: it runs in each trainer's venv."""

from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path


class CheckFailed(Exception):
    """One line saying which row differs and how; the driver prints it and exits 1."""


def stored_rows(jsonl_export: Path) -> list[dict]:
    """Each row's question, answers and the sha256 of each of its images, in the version's order."""
    rows = []
    for line in (jsonl_export / "data.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        rows.append(
            {
                "id": row["id"],
                "question": _last(row["prompt"], "user"),
                "chosen": _last(row["chosen"], "assistant"),
                "rejected": _last(row["rejected"], "assistant"),
                "images": [sha256(jsonl_export / path) for path in row["images"]],
            }
        )
    return rows


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def expect(row: dict, what: str, got, want) -> None:
    if got != want:
        raise CheckFailed(f"row {row['id']}: {what} is {got!r}, stored {want!r}")


def _last(messages: list[dict], role: str) -> str:
    return [m["content"] for m in messages if m["role"] == role][-1]


def losses(log: Path) -> list[float]:
    """The training losses a run logged step by step (``logging_steps: 1``): from the Trainer's
    ``trainer_state.json``, or from a JSON-lines log (one object per logging step, as ms-swift writes)."""
    if not log.is_file():
        raise CheckFailed(f"the trainer wrote no {log}")
    text = log.read_text(encoding="utf-8")
    entries = json.loads(text)["log_history"] if log.suffix == ".json" else [json.loads(x) for x in text.splitlines()]
    found = [float(entry["loss"]) for entry in entries if "loss" in entry]
    if not found or not all(math.isfinite(loss) for loss in found):
        raise CheckFailed(f"the losses in {log} are {found}, not finite numbers")
    return found


def main(check) -> None:
    """Run ``check(export, jsonl_export, model, work) -> dict`` on the command line's paths; write its result to
    ``work/result.json``, or print the one line of a failed check and exit 1."""
    export, jsonl, model, work = (Path(a).resolve() for a in sys.argv[1:])
    try:
        result = check(export, jsonl, model, work)
        with_images = sum(1 for row in stored_rows(jsonl) if row["images"])
        if result["examples"] != result["rows"]:
            raise CheckFailed(f"the trainer kept {result['examples']} of the {result['rows']} rows")
        if result["images"] != with_images:
            raise CheckFailed(f"{result['images']} examples carried their images, {with_images} rows have images")
    except CheckFailed as failed:
        print(f"compat check failed: {failed}", file=sys.stderr)
        sys.exit(1)
    (work / "result.json").write_text(json.dumps(result) + "\n", encoding="utf-8")
