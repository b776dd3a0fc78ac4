"""``prefgen verify``: a whole store against its manifests — each version's data files (sha256, bytes, rows), its
rejects, the manifest's own well-formedness, its parent, the card's ``configs:``, and no stray or missing files.
Problems are returned as lines (``prefgen.store.integrity.Problem``), never raised: the caller decides what to print.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from prefgen.core.errors import PrefgenError
from prefgen.core.fs import read_json
from prefgen.core.naming import check_version_name
from prefgen.store.card import card_data_files
from prefgen.store.folder import Store
from prefgen.store.integrity import PENDING, Problem, Progress, file_problem, rejects_problem
from prefgen.store.manifest import FORMAT, Manifest


@dataclass
class Report:
    """What ``verify_store`` looked at and what it found."""

    versions: int = 0
    files: int = 0
    bytes: int = 0
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)

    def summary(self, root: Path, quick: bool) -> str:
        checks = "sizes, rows" if quick else "sha256, sizes, rows"
        return (
            f"{root}: {_count(self.versions, 'version')}, {_count(self.files, 'data file')} "
            f"({_size(self.bytes)}, {self.rows} rows) match their manifests ({checks}); no problems"
        )


# ---------------------------------------------------------------------------------------------- one version


def version_problems(
    store: Store, manifest: Manifest, *, full: bool, progress: Progress | None = None
) -> list[Problem]:
    """Everything wrong with one published version: data files, stray files beside them, rejects, parent."""
    v, parent = manifest.version, manifest.parent
    problems = []
    if parent and not (store.root / "versions" / f"{parent}.json").is_file():
        problems.append(Problem(f"versions/{v}.json", f"its parent {parent} is missing (no versions/{parent}.json)"))
    held = sum(f.rows for f in manifest.files)
    if held != manifest.rows:
        problems.append(
            Problem(f"versions/{v}.json", f"its files hold {held} rows, its rows field says {manifest.rows}")
        )
    folder = store.root / "data" / v
    for shard in manifest.files:
        what = file_problem(folder / shard.name, shard, full=full, progress=progress)
        if what:
            problems.append(Problem(f"data/{v}/{shard.name}", what))
    listed = {f.name for f in manifest.files}
    if folder.is_dir():
        for extra in sorted(p.name for p in folder.iterdir() if p.name not in listed):
            problems.append(Problem(f"data/{v}/{extra}", f"not in the manifest of {v} (a stray file)"))
    what = rejects_problem(store.root / "rejects" / f"{v}.parquet", manifest.rejects, full=full)
    if what:
        problems.append(Problem(f"rejects/{v}.parquet", what))
    return problems


# ---------------------------------------------------------------------------------------------- the store


def read_manifest_file(root: Path, path: Path) -> Manifest | Problem:
    """A manifest, or the one problem that keeps it from being one (bad JSON, missing or wrong fields)."""
    rel = path.relative_to(root).as_posix()
    try:
        raw = read_json(path, shown=rel)
        if isinstance(raw, dict) and isinstance(raw.get("format"), int) and raw["format"] > FORMAT:
            return Problem(rel, f"written by a newer prefgen (manifest format {raw['format']}); upgrade prefgen")
        manifest = Manifest.model_validate(raw)
    except PrefgenError as exc:
        return Problem(rel, str(exc).removeprefix(f"{rel}: "))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the top level"
        return Problem(rel, f"not a valid manifest: {where}: {first['msg']}")
    if manifest.version != path.stem:
        return Problem(rel, f"names version {manifest.version!r}, not {path.stem!r}")
    bad = [f.name for f in manifest.files if "/" in f.name or "\\" in f.name or f.name in ("", ".", "..")]
    if bad:
        return Problem(rel, f"file name {bad[0]!r} is not a plain file name")
    return manifest


def verify_store(
    store: Store, version: str | None = None, *, quick: bool = False, progress: Progress | None = None
) -> Report:
    """Check every version (or only ``version``) against its manifest; with no version also the card's configs and
    data folders that no manifest claims. Problems are returned, not raised: the caller decides what to print."""
    report = Report()
    paths = sorted((store.root / "versions").glob("*.json"))
    if version is not None:
        check_version_name(version)
        paths = [p for p in paths if p.stem == version]
        if not paths:
            store.manifest(version)  # raises the usual "unknown version" line
    for path in paths:
        found = read_manifest_file(store.root, path)
        if isinstance(found, Problem):
            report.problems.append(found)
            continue
        report.versions += 1
        report.files += len(found.files)
        report.bytes += sum(f.bytes for f in found.files)
        report.rows += found.rows
        report.problems += version_problems(store, found, full=not quick, progress=progress)
    if version is None:
        named = {problem.path for problem in report.problems}
        report.problems += _store_problems(store, {p.stem for p in paths}, named)
    return report


def total_bytes(store: Store, version: str | None = None) -> int:
    """Bytes a full verify hashes (for progress); broken manifests count nothing."""
    total = 0
    for path in sorted((store.root / "versions").glob("*.json")):
        if version is None or path.stem == version:
            found = read_manifest_file(store.root, path)
            total += sum(f.bytes for f in found.files) if isinstance(found, Manifest) else 0
    return total


def _store_problems(store: Store, versions: set[str], named: set[str]) -> list[Problem]:
    """Data folders no manifest claims, and the card's configs."""
    problems = []
    data = store.root / "data"
    for folder in sorted(data.iterdir() if data.is_dir() else []):
        if folder.name not in versions and not (folder / PENDING).exists():
            what = "a folder no manifest claims" if folder.is_dir() else "a stray file"
            problems.append(Problem(f"data/{folder.name}", f"{what} (no versions/{folder.name}.json)"))
    return problems + _card_problems(store, bool(versions), named)


def _card_problems(store: Store, has_versions: bool, named: set[str]) -> list[Problem]:
    """Configs whose data files match nothing, unless that folder's files were named already (one cause, one
    line)."""
    card = store.root / "README.md"
    if not card.is_file():
        return [Problem("README.md", "missing (the dataset card lists the versions)")] if has_versions else []
    try:
        configs = card_data_files(card.read_text(encoding="utf-8"))
    except ValueError as exc:
        return [Problem("README.md", f"its YAML header cannot be read: {exc}")]
    problems = []
    for name, pattern in configs:
        folder = pattern.rpartition("/")[0] + "/"
        if pattern.startswith(("/", "\\")) or ".." in pattern.split("/"):
            problems.append(Problem("README.md", f"config {name!r} points outside the store ({pattern})"))
        elif not list(store.root.glob(pattern)) and not any(n.startswith(folder) for n in named):
            problems.append(Problem("README.md", f"config {name!r} points at {pattern}, which matches no file"))
    return problems


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"
