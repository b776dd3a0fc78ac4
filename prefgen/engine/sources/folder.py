"""Image folders as a source: every file whose name ends in one of the recipe's extensions, in sorted path order.

This listing is the only one: ``build --plan`` counts with it too, so that the plan and the build always agree on
which files are images (hidden files skipped, extensions matched with or without their dot, in any case)."""

from __future__ import annotations

import os
from pathlib import Path

from prefgen.core.config import resolve_path
from prefgen.core.errors import PrefgenError
from prefgen.engine.sources.common import Listing, Record, SourceItem, printable, question_fields, stat_fingerprint
from prefgen.recipe.sources import ImageFolderSource


def folder_listing(source: ImageFolderSource, base_dir: Path) -> Listing:
    """Relative paths of the image files, sorted; raises PrefgenError when the folder itself is missing or
    unreadable. Symlinked folders are followed once each, so that a link loop cannot make the listing endless."""
    root = resolve_path(source.path, base_dir)
    if not root.is_dir():
        raise PrefgenError(f"image folder {root} does not exist or is not a folder")
    extensions = _extensions(source)
    top = root.stat()
    keys, pending, visited = [], [(root, "")], {(top.st_dev, top.st_ino)}
    while pending:
        folder, prefix = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            if folder == root:
                raise PrefgenError(f"cannot read image folder {root}: {exc.strerror or exc}") from None
            keys.append(prefix)  # "sub/": listed so that load_rows reports it (unreadable_file) instead of skipping it
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                where = entry.stat() if entry.is_dir() else None  # follows symlinks; a dangling one is a "file"
            except OSError:
                where = None
            if where is None:
                if os.path.splitext(entry.name)[1].lower() in extensions:
                    keys.append(prefix + entry.name)
            elif source.recursive and (where.st_dev, where.st_ino) not in visited:
                visited.add((where.st_dev, where.st_ino))
                pending.append((Path(entry.path), prefix + entry.name + "/"))
    keys.sort()
    return keys, lambda i: stat_fingerprint(root / keys[i])


def folder_records(source: ImageFolderSource, items: list[SourceItem], base_dir: Path) -> list[Record]:
    """One record per listed file (with the recipe's fixed ``question``, if any); the file is read later, by
    ``load_rows``."""
    root = resolve_path(source.path, base_dir)
    fields = question_fields(source.question) if source.question else {}
    problem = None
    if source.question and not fields["question"]:
        problem = ("missing_question", f"the source's question holds only a placeholder: {source.question!r}")
    return [
        Record(printable(item.key), Path(item.key).name, file=root / item.key, fields=dict(fields), problem=problem)
        for item in items
    ]


def _extensions(source: ImageFolderSource) -> set[str]:
    """The recipe's extensions as ``os.path.splitext`` returns them: lower case, with their dot."""
    return {("" if e.startswith(".") else ".") + e.lower() for e in source.extensions}
