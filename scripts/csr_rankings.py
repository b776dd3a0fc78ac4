"""How well CSR's CLIP reward ranks a VLM's own sampled descriptions, judged by the shapes world's ground truth.

    python scripts/csr_rankings.py STORE@VERSION

STORE@VERSION is a best-of-k CSR store (`recipes/shapes-csr-best-of-k.yaml`, for example the oracle run's
`runs/efficacy-csr/oracle/data@r1`): each row holds the k sampled descriptions, each sentence's calibrated CLIP
score (`answers_clip_sentences`, the cosine) and the scene's objects. It prints
- the AUC of the sentence scores for sentences that name only present objects against sentences that name an absent
  one, on the model's own sentences;
- for each way of turning sentence scores into one score per description, how often the top description is truly
  better than the bottom one (the pair that rule would train on), how often the top one hallucinates, and its recall.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prefgen.core.errors import PrefgenError  # noqa: E402
from prefgen.models.sentences import split_sentences  # noqa: E402
from prefgen.shapes.mentions import judge  # noqa: E402
from prefgen.shapes.metrics import auc  # noqa: E402
from prefgen.store.query import fetch_rows, parse_ref  # noqa: E402

LAM = 0.9  # CSR's λ: the paper's sentence reward is λ · max(100 · cos, 0) + (1 − λ) · P(sentence)


def rules(scores: list[list[float]], oracle: list[float]) -> dict[str, list[float]]:
    """One score per description from its sentences' cosines, by each rule (and the ground truth's, to compare)."""
    every = [c for per in scores for c in per] or [0.0]
    centre = statistics.mean(every)
    return {
        "sum of λ·max(100·cos, 0) (the paper's path reward, CLIP part)": [
            sum(LAM * max(100 * c, 0.0) for c in per) for per in scores
        ],
        "mean cos (best of k by CSR's reward, CLIP part)": [statistics.mean(per) if per else -1.0 for per in scores],
        "min cos": [min(per) if per else -1.0 for per in scores],
        "sum of (cos - the scene's mean sentence cos)": [sum(c - centre for c in per) for per in scores],
        "ground truth (the oracle: objects right - 2 x objects wrong)": list(oracle),
    }


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    try:
        store, version = parse_ref(sys.argv[1])
        table = version or store.latest()
        _, rows = fetch_rows(store, f'SELECT objects, answers, answers_clip_sentences, answers_oracle FROM "{table}"')
    except PrefgenError as exc:  # no store, no such version, or not a best-of-k CSR store: one line, no traceback
        raise SystemExit(f"error: {exc}") from None
    present_s, absent_s = [], []
    tally: dict[str, list[int]] = {}
    chosen: dict[str, list[float]] = {}
    for objects, answers, scores, oracle in rows:
        kinds = {tuple(o.split(" ", 1)) for o in objects}
        for answer, per in zip(answers, scores):
            for sentence, c in zip(split_sentences(answer), per):
                judged = judge(sentence, kinds)
                (absent_s if judged.hallucinated else present_s if judged.hits else []).append(c)
        for answer in answers:
            judged = judge(answer, kinds)
            chosen.setdefault("any sample", []).append(bool(judged.hallucinated))
            chosen.setdefault("any sample recall", []).append(len(judged.hits) / len(kinds))
        for name, values in rules(scores, oracle).items():
            top = max(range(len(values)), key=values.__getitem__)
            bottom = min(range(len(values)), key=values.__getitem__)
            verdict = (oracle[top] > oracle[bottom]) - (oracle[top] < oracle[bottom])
            counts = tally.setdefault(name, [0, 0, 0])
            counts[1 - verdict] += 1  # better, tie, worse
            judged = judge(answers[top], kinds)
            chosen.setdefault(name, []).append(bool(judged.hallucinated))
            chosen.setdefault(name + " recall", []).append(len(judged.hits) / len(kinds))
    n = len(rows)
    print(f"{n} scenes, {len(present_s)} sentences naming present objects only, {len(absent_s)} naming an absent one")
    print(f"mean cos present {statistics.mean(present_s):.3f}, absent {statistics.mean(absent_s):.3f}")
    print(f"AUC present vs absent sentences: {auc(present_s, absent_s):.3f}")
    print(
        f"a sample, unranked: hallucinates {statistics.mean(chosen['any sample']):.2f}, "
        f"recall {statistics.mean(chosen['any sample recall']):.2f}"
    )
    print("| rule | top truly better / tie / worse than bottom | top hallucinates | top's recall |")
    print("|---|---|---|---|")
    for name, (better, tie, worse) in tally.items():
        hallucinates, recall = statistics.mean(chosen[name]), statistics.mean(chosen[name + " recall"])
        print(f"| {name} | {better / n:.2f} / {tie / n:.2f} / {worse / n:.2f} | {hallucinates:.2f} | {recall:.2f} |")


if __name__ == "__main__":
    main()
