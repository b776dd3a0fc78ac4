"""The per-stage, per-shard cache, and the fingerprints that key it.

A stage's output for a shard is stored under ``fingerprint = H(upstream fingerprint, stage type, params, the
stage's code, its models' identities, seed)``. The chain starts at the source shard (its items and their sizes and
times), so changing a stage's params, code or model recomputes that stage and everything after it, and nothing
before it. "The stage's code" is every prefgen module it can run, transitively, and the libraries' versions
(``code.py``); a model's identity is its Hub id and revision, or every file of its local folder (size and time).

Layout: ``<store>/.prefgen/cache/<fp[:2]>/<fp>.parquet`` (rows, without the source image, which the source entry
holds) and ``<fp>.json`` (stage, shard, counts, drops). Both are written atomically; the JSON is written last and
marks the entry complete.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from prefgen.core.config import resolve_path
from prefgen.core.fs import atomic_file, atomic_write_text
from prefgen.stages.base import Drop, Row


def digest(*parts: Any) -> str:
    """A stable hash of JSON-able parts."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def model_identity(config: Any, base_dir: Path) -> dict[str, Any] | None:
    """What identifies a model's weights: id@revision on the Hub, or a local folder's file sizes and times."""
    if config is None:
        return None
    data = config.model_dump(mode="json", exclude={"vllm"})  # how an engine starts never changes its rows
    path = data.get("path")
    if path:
        folder = resolve_path(path, base_dir)
        files = sorted(folder.rglob("*")) if folder.is_dir() else [folder]
        data["files"] = [
            (str(f.relative_to(folder)) if folder.is_dir() else f.name, f.stat().st_size, f.stat().st_mtime_ns)
            for f in files
            if f.is_file()
        ]
    return data


@dataclass
class CacheEntry:
    fingerprint: str
    stage: str
    shard: int
    rows: int
    drops: int
    bytes: int


class StageCache:
    def __init__(self, root: Path):
        self.root = Path(root)

    def _paths(self, fingerprint: str) -> tuple[Path, Path]:
        folder = self.root / fingerprint[:2]
        return folder / f"{fingerprint}.parquet", folder / f"{fingerprint}.json"

    def get(self, fingerprint: str) -> tuple[list[Row], list[Drop]] | None:
        data_path, meta_path = self._paths(fingerprint)
        try:
            meta = json.loads(meta_path.read_text())
            import pyarrow.parquet as pq

            rows = pq.read_table(data_path).to_pylist() if meta["rows"] else []
        except (OSError, ValueError, KeyError):
            return None  # missing or damaged: recompute
        drops = [Drop({"row_id": d["row_id"]}, d["reason"], d.get("detail", "")) for d in meta["drops"]]
        return rows, drops

    def put(self, fingerprint: str, rows: list[Row], drops: list[Drop], *, stage: str, shard: int) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        data_path, meta_path = self._paths(fingerprint)
        data_path.parent.mkdir(parents=True, exist_ok=True)
        if rows:
            with atomic_file(data_path) as tmp:
                pq.write_table(pa.Table.from_pylist(rows), tmp)
        meta = {
            "stage": stage,
            "shard": shard,
            "rows": len(rows),
            "created": time.time(),
            "drops": [{"row_id": d.row.get("row_id"), "reason": d.reason, "detail": d.detail} for d in drops],
        }
        atomic_write_text(meta_path, json.dumps(meta))

    def entries(self) -> list[CacheEntry]:
        found = []
        for meta_path in sorted(self.root.glob("??/*.json")):
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, ValueError):
                continue
            data_path = meta_path.with_suffix(".parquet")
            size = meta_path.stat().st_size + (data_path.stat().st_size if data_path.exists() else 0)
            found.append(
                CacheEntry(meta_path.stem, meta["stage"], meta["shard"], meta["rows"], len(meta["drops"]), size)
            )
        return found

    def prune(self, keep: Iterable[str] = ()) -> tuple[int, int]:
        """Delete every entry not in ``keep``; returns (entries, bytes) removed."""
        keep = set(keep)
        removed = freed = 0
        for entry in self.entries():
            if entry.fingerprint in keep:
                continue
            for path in self._paths(entry.fingerprint):
                if path.exists():
                    freed += path.stat().st_size
                    path.unlink()
            removed += 1
        for leftover in self.root.glob("??/*.tmp"):
            leftover.unlink()
        return removed, freed


def in_use(root: Path) -> set[str]:
    """Fingerprints the last build of each recipe used (recorded by the runner in used/<recipe>.json)."""
    keep: set[str] = set()
    for path in (Path(root) / "used").glob("*.json"):
        try:
            keep.update(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return keep


def summarize(root: Path) -> list[tuple[str, str, str, str, str]]:
    """Rows for `prefgen cache ls`: per stage label, entries, rows, size and how many the last builds used."""
    keep = in_use(root)
    groups: dict[str, list[CacheEntry]] = {}
    for entry in StageCache(root).entries():
        groups.setdefault(entry.stage, []).append(entry)
    return [
        (
            stage,
            str(len(es)),
            str(sum(e.rows for e in es)),
            f"{sum(e.bytes for e in es) / 1e6:.1f} MB",
            f"{sum(e.fingerprint in keep for e in es)}/{len(es)}",
        )
        for stage, es in sorted(groups.items())
    ]
