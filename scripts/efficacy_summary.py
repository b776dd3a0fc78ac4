"""Write OUT/summary.json for `scripts/efficacy.sh`: each run's last round against the base, as a share of the
ground-truth oracle's gain.

    python scripts/efficacy_summary.py OUT --loop csr|sena [--metric NAME]

OUT holds `prefgen train --rounds` folders: `oracle`, `method` (the paper's loop), `guarded` (the loop with its
label-free guards) and any other controls. The headline metric is `chair.chair_s` for CSR (lower is better) and,
for SENA, the QA kind the oracle's first round trained most (its pairs' verdicts by kind), or POPE adversarial F1
when that kind is presence questions. share_of_oracle = the run's gain / the oracle's gain, from the same base
(round 0 of the oracle run). Each run is judged on the model its loop kept: its last round, or, where the round
gate stopped the loop (verdict 0 at round r), round r - 1 (`kept_round`). The summary's `method` is the guarded
loop where there is one, else the paper's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prefgen.core.errors import PrefgenError  # noqa: E402
from prefgen.train.lineage import RunFolder, flatten_metrics  # noqa: E402

LOWER_IS_BETTER = {"chair.chair_s", "chair.chair_i"}
QA_KINDS = ("colour", "shape", "count")
# beside the headline, per run (where its rounds were evaluated with them)
REPORTED = ("chair.chair_s", "chair.recall", "chair.right", "chair.well_formed", "qa.all", "pope.adversarial.f1")


def rounds(run: Path) -> list[dict[str, Any]]:
    """Every round's evaluation of a rounds folder, flattened (``chair.chair_s``, ``qa.count`` ...), round 0 first."""
    return [flatten_metrics(r.eval) for r in RunFolder(run).rounds()]


def kept_round(rows: list[dict[str, Any]]) -> int:
    """The round whose model the loop kept: the round before the first one the gate stopped, else the last."""
    for r, found in enumerate(rows[1:], start=1):
        if found.get("gate.verdict") == 0:
            return r - 1
    return len(rows) - 1


def trained_kind(run: Path) -> str:
    """The metric for the kind of question the run's first round trained most (settled pairs only)."""
    first = RunFolder(run).lineage(1) or {}
    by_kind = first.get("eval", {}).get("pairs", {}).get("by_kind", {})
    counts = {kind: v["pairs"] for kind, v in by_kind.items() if kind in (*QA_KINDS, "presence")}
    if not counts:
        raise SystemExit(f"error: {run} round 1 records no question pairs by kind; pass --metric")
    kind = max(counts, key=counts.get)
    return "pope.adversarial.f1" if kind == "presence" else f"qa.{kind}"


def share(base: float, value: float, oracle: float, lower_better: bool) -> float | None:
    """(value's gain) / (oracle's gain) over the base; None when the oracle gained nothing."""
    sign = -1.0 if lower_better else 1.0
    gain, oracle_gain = sign * (value - base), sign * (oracle - base)
    return gain / oracle_gain if oracle_gain > 0 else None


def summarize(out: Path, loop: str, metric: str | None = None) -> dict[str, Any]:
    runs = {p.name: str(p) for p in sorted(out.iterdir()) if (p / "round-0.json").is_file()}
    if "oracle" not in runs:
        raise SystemExit(f"error: {out / 'oracle'} is not a rounds folder yet")
    if "method" not in runs and "guarded" not in runs:
        raise SystemExit(f"error: neither {out / 'guarded'} nor {out / 'method'} is a rounds folder yet")
    metric = metric or ("chair.chair_s" if loop == "csr" else trained_kind(out / "oracle"))
    lower = metric in LOWER_IS_BETTER
    every = {name: rounds(Path(path)) for name, path in runs.items()}
    base = every["oracle"][0]
    kept = {name: kept_round(rows) for name, rows in every.items()}
    for name, rows in every.items():
        stopped = kept[name] < len(rows) - 1
        if (len(rows) < 4 and not stopped) or metric not in rows[kept[name]]:
            raise SystemExit(f"error: {runs[name]} has no round 3 with {metric} yet")
    oracle = every["oracle"][kept["oracle"]][metric]

    def row(name: str) -> dict[str, Any]:
        last = every[name][kept[name]]
        return {
            metric: last[metric],
            "share_of_oracle": share(base[metric], last[metric], oracle, lower),
            "kept_round": kept[name],
            "rounds": [r.get(metric) for r in every[name]],
            **{k: last.get(k) for k in REPORTED if k in last or k in ("chair.chair_s", "chair.recall")},
        }

    table = {name: row(name) for name in runs}
    best = "guarded" if "guarded" in table else "method"
    method = table[best]
    return {
        "loop": loop,
        "metric": metric,
        "runs": runs,
        "base": base[metric],
        "oracle": table["oracle"][metric],
        "method_run": best,
        "method": method[metric],
        "kept_round": method["kept_round"],
        "share_of_oracle": method["share_of_oracle"],
        "recall_base": base.get("chair.recall"),
        "recall_method": method["chair.recall"],
        "chair_s_base": base.get("chair.chair_s"),
        "chair_s_method": method["chair.chair_s"],
        "well_formed_base": base.get("chair.well_formed"),
        "well_formed_method": method.get("chair.well_formed"),
        "table": table,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--loop", choices=("csr", "sena"), required=True)
    parser.add_argument("--metric", help="headline (default: chair.chair_s for csr, the trained QA kind for sena)")
    args = parser.parse_args()
    try:
        summary = summarize(args.out, args.loop, args.metric)
    except PrefgenError as exc:  # a damaged rounds folder: one line, no traceback
        raise SystemExit(f"error: {exc}") from None
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
