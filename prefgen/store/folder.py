"""The versioned store: a folder that is also a Hugging Face dataset repo.

    <store>/README.md                               dataset card; its YAML `configs:` has one config per version
                                                    plus `default` = the latest, so `load_dataset(store)` works
    <store>/data/<version>/train-XXXXX-of-YYYYY.parquet
    <store>/versions/<version>.json                 manifest; a version exists once its manifest does
    <store>/rejects/<version>.parquet               rows dropped while building it: row_id, stage, reason, detail
    <store>/.prefgen/                               lock and drafts (never pushed)

Writers open a ``Draft`` (which holds the store's lock), write shards, and ``publish`` it: everything that needs
disk space (the rejects, the manifest as ``manifest.pending.json`` in the draft) is written first; from then on
the shards are renamed, the data folder is moved in with one rename, and the manifest moves into versions/ last.
A writer killed at any point leaves either a draft without a pending manifest (continued or discarded by the next
writer) or one with it, in the draft or the data folder (completed by the next writer); readers never see a
partial version. Published versions are immutable. Every file is written through ``prefgen.core.fs``: a temporary
file beside it, fsync, rename.
"""

from __future__ import annotations

import json
import shutil
import stat
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from prefgen import __version__
from prefgen.core.contract import REQUIRED_COLUMNS
from prefgen.core.errors import PrefgenError, StoreError
from prefgen.core.fs import atomic_file, atomic_write_text, check_writable, move_file, read_json, replace_folder
from prefgen.core.naming import check_version_name
from prefgen.store.card import render_card
from prefgen.store.integrity import PENDING, Problem, damaged, file_problem, sha256_file
from prefgen.store.manifest import FORMAT, Manifest, ShardInfo
from prefgen.store.rows import REJECTS_SCHEMA, rows_to_table

if TYPE_CHECKING:
    import pyarrow as pa

ROW_GROUP_SIZE = 100  # what datasets uses for image data: keeps the Hub viewer and random access responsive
_PENDING = PENDING
_DRAFT_META = "draft.json"
_RENAMES = "publish.json"  # a draft's shard -> published file names, written just before its pending manifest


class Store:
    """A store folder. ``Store(path)`` opens an existing one; ``Store.create(path)`` makes (or opens) one."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.exists():
            raise StoreError(f"no store at {self.root} (build one with `prefgen build`, or `prefgen pull` one)")
        if not (self.root / "versions").is_dir():
            raise StoreError(f"{self.root} is not a prefgen store (it has no versions/ folder)")

    @classmethod
    def create(cls, root: str | Path) -> "Store":
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise StoreError(f"cannot create a store at {root}: it is a file")
        if root.is_dir() and not (root / "versions").is_dir() and any(p.name != ".prefgen" for p in root.iterdir()):
            raise StoreError(f"cannot create a store at {root}: the folder exists, is not empty and is not a store")
        check_writable(root)  # one line now, not a PermissionError after the models have loaded
        (root / "versions").mkdir(parents=True, exist_ok=True)
        (root / "data").mkdir(exist_ok=True)
        return cls(root)

    # ------------------------------------------------------------------------------------------------ reading

    def manifests(self) -> list[Manifest]:
        """Published versions, oldest first."""
        found = [self._read_manifest(p) for p in (self.root / "versions").glob("*.json")]
        return sorted(found, key=lambda m: (m.created_at, m.version))

    def versions(self) -> list[str]:
        return [m.version for m in self.manifests()]

    def latest(self) -> str | None:
        manifests = self.manifests()
        return manifests[-1].version if manifests else None

    def manifest(self, version: str | None = None) -> Manifest:
        """The manifest of ``version``, or of the latest version when None."""
        if version is None:
            version = self.latest()
            if version is None:
                raise StoreError(f"store {self.root} has no versions yet")
        check_version_name(version)
        path = self.root / "versions" / f"{version}.json"
        if not path.exists():
            known = ", ".join(self.versions()) or "none"
            raise StoreError(f"unknown version {version!r} in {self.root} (versions: {known})")
        return self._read_manifest(path)

    def data_files(self, version: str | None = None) -> list[Path]:
        """The parquet files of a version, after the cheap checks of ``check_readable``."""
        manifest = self.manifest(version)
        self.check_readable(manifest.version)
        return [self.root / "data" / manifest.version / shard.name for shard in manifest.files]

    def check_readable(self, version: str | None = None) -> None:
        """Stop a reader with one line naming the damaged file (missing, truncated, not parquet) before DuckDB or
        Arrow fails on it. Cheap: sizes and parquet's end marks only; ``prefgen verify`` hashes."""
        found = self.damage(self.manifest(version))
        if found is not None:
            raise found

    def damage(self, version: str | Manifest | None, *, full: bool = False) -> StoreError | None:
        """The error a reader of ``version`` should stop with, or None: the first data file that fails the cheap
        checks (or, with ``full``, the hash too)."""
        manifest = version if isinstance(version, Manifest) else self.manifest(version)
        folder = self.root / "data" / manifest.version
        for shard in manifest.files:
            what = file_problem(folder / shard.name, shard, full=full)
            if what:
                return damaged(self.root, manifest.version, Problem(f"data/{manifest.version}/{shard.name}", what))
        return None

    def rejects_file(self, version: str | None = None) -> Path | None:
        """rejects/<version>.parquet, when the version has one (versions made by derive or pull may not)."""
        path = self.root / "rejects" / f"{self.manifest(version).version}.parquet"
        return path if path.is_file() else None

    def _read_manifest(self, path: Path) -> Manifest:
        rel = path.relative_to(self.root).as_posix()
        verify = f"run `prefgen verify {self.root}`"
        try:
            raw = read_json(path, shown=rel)
        except PrefgenError as exc:
            raise StoreError(f"corrupt manifest {exc}; {verify}") from None
        if isinstance(raw, dict) and isinstance(raw.get("format"), int) and raw["format"] > FORMAT:
            raise StoreError(
                f"{rel} was written by a newer prefgen (manifest format {raw['format']}); upgrade prefgen to read "
                "this store"
            )
        try:
            return Manifest.model_validate(raw)
        except ValidationError as exc:
            raise StoreError(f"corrupt manifest {rel}: {exc.errors()[0]['msg']}; {verify}") from None

    # ------------------------------------------------------------------------------------------------ writing

    def draft(
        self,
        version: str | None = None,
        *,
        meta: dict[str, Any] | None = None,
        fresh: bool = False,
        timeout: float = 0,
    ) -> "Draft":
        """Open a draft of ``version`` (default: the next ``vN``), taking the store's lock.

        An unfinished draft of the same version is continued when its ``meta`` matches (a resumed build), and
        replaced otherwise (``Draft.replaced`` says so); ``fresh`` discards even a matching one.
        """
        return Draft(self, version, meta or {}, fresh, timeout)

    def next_version_name(self) -> str:
        taken = set(self.versions()) | {p.name for p in (self.root / "data").glob("*")}
        n = 1 + max((int(v[1:]) for v in taken if v[:1] == "v" and v[1:].isdigit()), default=0)
        return f"v{n}"

    def _recover(self) -> None:
        """Finish publications a killed writer left after writing the manifest: drafts not yet moved into data/,
        then data folders whose manifest is not yet in versions/."""
        for pending in (self.root / ".prefgen" / "drafts").glob(f"*/{_PENDING}"):
            target = self.root / "data" / pending.parent.name
            if not target.exists():
                _finish_publish(pending.parent, target)
        for pending in (self.root / "data").glob(f"*/{_PENDING}"):
            version = pending.parent.name
            target = self.root / "versions" / f"{version}.json"
            if not target.exists():
                move_file(pending, target)
                write_card(self)
            else:
                pending.unlink()


class Draft:
    """A version being written. Holds the store's lock from creation until publish, discard or close."""

    def __init__(self, store: Store, version: str | None, meta: dict[str, Any], fresh: bool, timeout: float):
        from filelock import FileLock, Timeout

        self.store = store
        check_writable(store.root)
        (store.root / ".prefgen").mkdir(exist_ok=True)
        self._lock = FileLock(store.root / ".prefgen" / "lock")
        try:
            self._lock.acquire(timeout=timeout)
        except Timeout:
            raise StoreError(
                f"store {store.root} is being written by another process; try again when it is done"
            ) from None
        try:
            store._recover()
            drafts = store.root / ".prefgen" / "drafts"
            if version is None:
                existing = [p.name for p in drafts.glob("*") if _read_meta(p) == meta] if drafts.is_dir() else []
                version = existing[0] if existing and not fresh else store.next_version_name()
            self.version = check_version_name(version)
            if (store.root / "versions" / f"{version}.json").exists() or (store.root / "data" / version).exists():
                raise StoreError(
                    f"version {version!r} already exists in {store.root}; versions are immutable, choose another name"
                )
            self.path = drafts / version
            # A draft of another build (a recipe since fixed, other images) is replaced, never a reason to refuse:
            # its finished stages stay in the stage cache. ``replaced`` lets the writer say so.
            self.replaced = self.path.exists() and not fresh and _read_meta(self.path) != meta
            if self.path.exists() and (fresh or self.replaced):
                shutil.rmtree(self.path)
            self.path.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.path / _DRAFT_META, json.dumps(meta, sort_keys=True))
        except BaseException:
            self._lock.release()
            raise

    def __enter__(self) -> "Draft":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the lock; an unpublished draft stays on disk to be continued later."""
        if self._lock.is_locked:
            self._lock.release()

    def shards(self) -> dict[int, Path]:
        """Finished shards by index."""
        return {int(p.stem.split("-")[1]): p for p in sorted(self.path.glob("shard-*.parquet"))}

    def write_shard(self, index: int, rows: "list[dict] | pa.Table") -> Path:
        """Write shard ``index`` atomically (a crash leaves the old state or the whole shard, never part of it)."""
        import pyarrow.parquet as pq

        table = rows if not isinstance(rows, list) else rows_to_table(rows)
        missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
        if missing:
            raise StoreError(f"rows lack the required column(s) {', '.join(missing)}")
        target = self.path / f"shard-{index:05d}.parquet"
        with atomic_file(target) as tmp:
            pq.write_table(table, tmp, row_group_size=ROW_GROUP_SIZE)
        return target

    def publish(
        self, *, parent: str | None = "latest", message: str = "", origin: str = "build", **info: Any
    ) -> Manifest:
        """Make the draft a published version and release the lock. ``info`` fills the manifest's other fields."""
        import pyarrow.parquet as pq

        store, version = self.store, self.version
        shards = [p for _, p in sorted(self.shards().items())]
        if not shards:
            raise StoreError(f"draft {version!r} has no rows to publish")
        if parent == "latest":
            parent = store.latest()
        counts = [pq.read_metadata(p).num_rows for p in shards]
        if sum(counts) and 0 in counts:  # empty shards add nothing but files
            shards, counts = [p for p, c in zip(shards, counts) if c], [c for c in counts if c]
        schemas = [pq.read_schema(p) for p in shards]
        if any(s.remove_metadata() != schemas[0].remove_metadata() for s in schemas[1:]):
            raise StoreError(f"draft {version!r} has shards with different columns; it cannot be published as one")
        names = [f"train-{i:05d}-of-{len(shards):05d}.parquet" for i in range(len(shards))]
        files = [
            ShardInfo(name=name, rows=rows, bytes=shard.stat().st_size, sha256=sha256_file(shard))
            for name, shard, rows in zip(names, shards, counts)
        ]
        # Everything that needs disk space is written before the first rename: a full disk here leaves the draft
        # as it was, to be continued once there is room.
        rejects = self._collect_rejects()
        manifest = Manifest(
            version=version,
            parent=parent,
            created_at=datetime.now(timezone.utc),
            message=message,
            origin=origin,
            rows=sum(counts),
            files=files,
            columns=schemas[0].names,
            rejects=rejects,
            code_version=__version__,
            **info,
        )
        atomic_write_text(self.path / _RENAMES, json.dumps({s.name: n for s, n in zip(shards, names)}))
        atomic_write_text(self.path / _PENDING, manifest.model_dump_json(indent=2))  # the commit point
        _finish_publish(self.path, store.root / "data" / version)
        store._recover()  # moves the manifest into versions/ and rewrites the card
        self.close()
        return manifest

    def write_rejects(self, index: int, rejects: list[dict]) -> None:
        """Record shard ``index``'s rejected rows (``row_id``, ``stage``, ``reason``, ``detail``). Write them before
        the shard itself: a finished shard then always has its rejects."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        with atomic_file(self.path / f"rejects-{index:05d}.parquet") as tmp:
            pq.write_table(pa.Table.from_pylist(rejects, schema=REJECTS_SCHEMA()), tmp)

    def _collect_rejects(self) -> int:
        """Gather the shards' rejects into rejects/<version>.parquet (invisible until the manifest exists)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        parts = sorted(self.path.glob("rejects-*.parquet"))
        table = pa.concat_tables([pq.read_table(p) for p in parts]) if parts else REJECTS_SCHEMA().empty_table()
        folder = self.store.root / "rejects"
        folder.mkdir(exist_ok=True)
        with atomic_file(folder / f"{self.version}.parquet") as tmp:
            pq.write_table(table, tmp)
        return table.num_rows

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        self.close()


def write_card(store: Store) -> None:
    """Rewrite README.md: YAML configs (one per version, `default` = latest) and a human summary."""
    atomic_write_text(store.root / "README.md", render_card(store.root.name, store.manifests()))


def _finish_publish(draft: Path, target: Path) -> None:
    """Everything after a draft's manifest is written: name the files, drop the draft's bookkeeping, make the data
    read-only and move the folder into data/. Each step can be repeated, so the next writer finishes what a killed
    one started."""
    renames = _read_json_or_none(draft / _RENAMES) or {}
    for shard, name in renames.items():
        if (draft / shard).exists():
            move_file(draft / shard, draft / name)
    for leftover in draft.iterdir():
        if not leftover.name.startswith("train-") and leftover.name != _PENDING:
            leftover.unlink()
    for f in draft.glob("train-*.parquet"):
        f.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    replace_folder(draft, target)


def _read_json_or_none(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _read_meta(path: Path) -> dict | None:
    return _read_json_or_none(path / _DRAFT_META)
