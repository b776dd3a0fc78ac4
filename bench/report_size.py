"""Size and time-to-interactive of the version report for a large synthetic version (targets: <= 25 MB, <= 2 s).

Run: .venv/bin/python bench/report_size.py [--pairs 10000] [--per-image 3] [--runs 3] [--keep DIR]
(``--per-image 1`` is the worst case for size: every pair has its own image.)
Builds a store of ``--pairs`` synthetic pairs over photo-like 336 x 336 JPEG images (``--per-image`` questions per
image), a third each SENA-like (rejected on a diffusion-noised image, recreated for the gallery), CSR-like (five
scored sentences per answer) and SeVa-like (noised too), writes the report, opens it ``--runs`` times in headless
Chromium (/usr/bin/chromium through /usr/bin/chromedriver; Selenium Manager kept offline) and prints the file size,
the time to write it, and the median time from navigation start to the gallery being interactive (rows parsed,
first page drawn, controls live), plus one text search over every pair, all measured in this one run.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).parents[1]))

from prefgen.report import write_report
from prefgen.stages.corrupt.ops import DiffusionNoise
from prefgen.stages.corrupt.pixels import describe_corruption
from prefgen.store.folder import Store

TARGET_MB, TARGET_S = 25.0, 2.0
WORDS = (
    "a red square on the left",
    "two blue circles",
    "a wooden table",
    "the sky is cloudy",
    "a dog sits",
    "near the window",
    "a green car parked",
    "three people walking",
    "in the background",
    "a yellow sign",
)


def photo(rng: np.random.Generator, side: int = 336) -> bytes:
    """A photo-like JPEG: a smooth gradient, shapes, and sensor-like noise (compresses like a real photo)."""
    ys, xs = np.mgrid[0:side, 0:side] / side
    base = rng.uniform(40, 200, 3)[None, None, :] + 60 * np.stack([xs, ys, xs * ys], axis=-1) * rng.uniform(-1, 1, 3)
    image = Image.fromarray(np.clip(base + rng.normal(0, 6, (side, side, 3)), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(2, 6)):
        x, y, r = (int(v) for v in rng.integers(20, side - 20, 3) // (1, 1, 4))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x - r, y - r, x + r, y + r], fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def sentence(rng: np.random.Generator) -> str:
    return " ".join(WORDS[i] for i in rng.choice(len(WORDS), 2, replace=False)).capitalize() + "."


def synthetic_rows(n: int, per_image: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    images = [photo(rng) for _ in range((n + per_image - 1) // per_image)]
    rows = []
    for i in range(n):
        method = ("sena", "csr", "seva")[i % 3]
        chosen = [sentence(rng) for _ in range(5)]
        rejected = [sentence(rng) for _ in range(5)]
        cs, rs = float(rng.normal(25, 3)), float(rng.normal(20, 3))
        row = {
            "id": f"pair-{i:05d}",
            "images": [{"bytes": images[i // per_image], "path": f"img-{i // per_image}.jpg"}],
            "image_id": f"img-{i // per_image}",
            "question": f"Question {i}: what is in the picture?",
            "question_source": ("self_question", "dataset", "description")[i % 3],
            "prompt": [{"role": "user", "content": f"Question {i}: what is in the picture?"}],
            "chosen": [{"role": "assistant", "content": " ".join(chosen)}],
            "rejected": [{"role": "assistant", "content": " ".join(rejected)}],
            "chosen_score": cs,
            "rejected_score": rs,
            "margin": cs - rs,
            "method": method,
            "corruption": None,
            "csr_chosen_steps": None,
            "csr_rejected_steps": None,
        }
        if method == "csr":
            for side, texts in (("chosen", chosen), ("rejected", rejected)):
                row[f"csr_{side}_steps"] = [
                    {
                        "text": t,
                        "clip": float(rng.uniform(10, 30)),
                        "logprob_mean": float(rng.uniform(-2, 0)),
                        "reward": float(rng.uniform(8, 28)),
                    }
                    for t in texts
                ]
        else:
            t = 600 if method == "sena" else 500
            row["corruption"] = describe_corruption([DiffusionNoise(t=t, space="normalized")], seed=i)
        rows.append(row)
    return rows


def make_store(root: Path, n: int, per_image: int) -> Store:
    store = Store.create(root)
    rows = synthetic_rows(n, per_image)
    with store.draft("v1") as draft:
        for k in range(0, n, 1000):
            draft.write_shard(k // 1000, rows[k : k + 1000])
        draft.publish(message=f"{n} synthetic pairs")
    return store


def browser():
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not try to download a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1300,1000",
    ):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def measure(page: Path, runs: int) -> tuple[list[float], float]:
    """(seconds from navigation start to interactive, per run; seconds of one search over every pair)."""
    driver = browser()
    try:
        ready = []
        for _ in range(runs):
            driver.get("about:blank")
            driver.get(page.as_uri())  # returns after the load event; the page script runs before it
            ready.append(driver.execute_script("return window.__reportReady") / 1000)
        search = (
            driver.execute_script(
                "const e = document.getElementById('f-text'); const t0 = performance.now(); e.value = 'dog sits';"
                "e.dispatchEvent(new Event('input')); return performance.now() - t0"
            )
            / 1000
        )
        return ready, search
    finally:
        driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--per-image", type=int, default=3, help="Questions (pairs) per image.")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--keep",
        type=Path,
        help="Build the store and report here (kept, and reused by later runs "
        "with the same --keep) instead of in a temporary folder.",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        start = time.perf_counter()
        if args.keep and (root / "store" / "versions").is_dir():  # a kept store is reused: rerun reports quickly
            store = Store(root / "store")
            args.pairs = store.manifest().rows
        else:
            store = make_store(root / "store", args.pairs, args.per_image)
        built = time.perf_counter() - start
        start = time.perf_counter()
        result = write_report([str(store.root)], root / "report.html")
        written = time.perf_counter() - start
        ready, search = measure(result.path, args.runs)
        size_mb = result.bytes / 1e6
        tti = statistics.median(ready)
        print(
            f"pairs {args.pairs}, images {(args.pairs + args.per_image - 1) // args.per_image} "
            f"(+ corrupted {sum(1 for i in range(args.pairs) if i % 3 != 1)}), store built in {built:.1f} s"
        )
        print(
            f"report: {size_mb:.1f} MB (target <= {TARGET_MB:.0f} MB, ratio {size_mb / TARGET_MB:.2f}), "
            f"written in {written:.1f} s"
        )
        print(
            f"time to interactive: median {tti:.2f} s of {args.runs} "
            f"({', '.join(f'{r:.2f}' for r in ready)}) (target <= {TARGET_S:.0f} s, ratio {tti / TARGET_S:.2f})"
        )
        print(f"search over all {args.pairs} pairs: {search * 1000:.0f} ms")


if __name__ == "__main__":
    main()
