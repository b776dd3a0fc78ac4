"""`prefgen verify` hashing speed against `sha256sum` on the same files, in one run.

Builds a throwaway store of ``--files`` parquet files holding ``--mb`` MB of incompressible image bytes in all,
then times a full ``verify_store`` (sha256 of every byte, plus sizes, rows and the card) and ``sha256sum`` over the
same data files. Each is run ``--runs`` times after one warm-up read, so both hash from the page cache: the ratio
compares hashing, not the disk. Goal: verify at >= 0.8x sha256sum's MB/s.

    .venv/bin/python bench/verify.py --mb 512 --files 4
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _timing import timed  # noqa: E402

IMAGE_BYTES = 1 << 20  # one "image" per row: rows of 1 MiB keep the table small and the bytes incompressible


def build_store(root: Path, mb: int, files: int):
    """A store with one version whose ``files`` shards hold ``mb`` MB of random image bytes."""
    import pyarrow as pa

    from prefgen.core.contract import REQUIRED_COLUMNS, contract_features
    from prefgen.store.folder import Store

    schema = pa.schema([contract_features().arrow_schema.field(c) for c in REQUIRED_COLUMNS])
    rows_per_file = max(1, mb * 10**6 // IMAGE_BYTES // files)
    store = Store.create(root)
    with store.draft("v1") as draft:
        for shard in range(files):
            rows = [
                {
                    "id": f"{shard}-{i}",
                    "images": [{"bytes": os.urandom(IMAGE_BYTES), "path": None}],
                    "prompt": [{"role": "user", "content": "What is this?"}],
                    "chosen": [{"role": "assistant", "content": "Noise."}],
                    "rejected": [{"role": "assistant", "content": "A cat."}],
                }
                for i in range(rows_per_file)
            ]
            draft.write_shard(shard, pa.Table.from_pylist(rows, schema=schema))
        draft.publish(message="bench")
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=512, help="Data size in MB.")
    parser.add_argument("--files", type=int, default=4, help="Number of parquet files.")
    parser.add_argument("--runs", type=int, default=3, help="Timed runs of each (median).")
    parser.add_argument("--dir", type=Path, default=None, help="Where to build the store (default: a temp folder).")
    args = parser.parse_args()
    if shutil.which("sha256sum") is None:
        sys.exit("sha256sum is not installed")

    from prefgen.store.verify import verify_store

    scratch = Path(tempfile.mkdtemp(prefix="prefgen-bench-verify-", dir=args.dir))
    try:
        store = build_store(scratch / "store", args.mb, args.files)
        data = sorted((store.root / "data" / "v1").glob("*.parquet"))
        size = sum(p.stat().st_size for p in data)

        def ours() -> None:
            report = verify_store(store)
            assert not report.problems, report.problems

        def theirs() -> None:
            subprocess.run(["sha256sum", *map(str, data)], check=True, stdout=subprocess.DEVNULL)

        theirs()  # warm the page cache for both
        ours_s, theirs_s = timed(ours, args.runs), timed(theirs, args.runs)
        ours_rate, theirs_rate = size / ours_s / 1e6, size / theirs_s / 1e6
        print(f"{len(data)} files, {size / 1e6:.0f} MB, median of {args.runs} runs (page cache warm)")
        print(f"prefgen verify  {ours_s:7.3f} s  {ours_rate:8.0f} MB/s")
        print(f"sha256sum       {theirs_s:7.3f} s  {theirs_rate:8.0f} MB/s")
        print(f"ratio           {ours_rate / theirs_rate:.2f}x  (goal >= 0.80x)")
        if shutil.which("openssl"):  # sha256sum may lack the CPU's SHA instructions; OpenSSL (as hashlib) uses them
            openssl_s = timed(
                lambda: subprocess.run(
                    ["openssl", "dgst", "-sha256", *map(str, data)], check=True, stdout=subprocess.DEVNULL
                ),
                args.runs,
            )
            print(f"openssl dgst    {openssl_s:7.3f} s  {size / openssl_s / 1e6:8.0f} MB/s  (for reference)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
