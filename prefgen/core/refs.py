"""The one grammar of dataset references, used by every command that names a dataset:

- ``STORE`` or ``STORE@VERSION``: a local store folder, at one of its versions (default: the latest);
- ``hf://REPO`` or ``hf://REPO@TAG``: a Hub dataset repo at a tag or revision (``REPO@TAG`` where only the Hub
  makes sense, as in ``prefgen pull``).

The version is what follows the **last** ``@``, and only when it is a valid version name (no ``/``), so a folder
whose name holds an ``@`` (``runs/exp@2/store``) stays a path. A path that exists as written is never split.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from prefgen.core.errors import PrefgenError
from prefgen.core.naming import VERSION_PATTERN

HUB_PREFIX = "hf://"
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")  # Hub revisions may be branches such as refs/pr/1


@dataclass(frozen=True)
class DataRef:
    """Where pairs come from: a local store folder at a version, or a Hub dataset repo at a tag."""

    location: str
    version: str | None = None
    hub: bool = False

    @classmethod
    def parse(cls, text: str) -> DataRef:
        """``STORE[@VERSION]`` or ``hf://REPO[@TAG]``; a one-line error for anything else."""
        if text.startswith(HUB_PREFIX):
            repo, tag = split_hub_ref(text.removeprefix(HUB_PREFIX), original=text)
            return cls(repo, tag, hub=True)
        location, version = split_store_ref(text)
        return cls(location, version, hub=False)

    def __str__(self) -> str:
        at = f"@{self.version}" if self.version else ""
        return f"{HUB_PREFIX if self.hub else ''}{self.location}{at}"


def split_store_ref(text: str) -> tuple[str, str | None]:
    """``STORE[@VERSION]`` -> (store path, version or None)."""
    if not text:
        raise PrefgenError("empty dataset reference: use STORE[@VERSION] or hf://USER/REPO@TAG")
    if "@" not in text or Path(text).exists():
        return text, None
    root, _, version = text.rpartition("@")
    if not root:
        raise PrefgenError(f"bad dataset reference {text!r}: the store folder is missing before '@'")
    if not re.match(VERSION_PATTERN, version) or ".." in version:
        if not version:
            raise PrefgenError(f"bad dataset reference {text!r}: no version after '@'")
        return text, None  # an '@' inside a folder name, not a version
    return root, version


def split_hub_ref(text: str, original: str | None = None) -> tuple[str, str | None]:
    """``USER/REPO[@TAG]`` -> (repo id, tag or None). Repo ids never hold an '@', so the split is at the last one."""
    shown = original or text
    repo, at, tag = text.rpartition("@") if "@" in text else (text, "", "")
    if not repo or (at and not tag):
        raise PrefgenError(f"bad Hub reference {shown!r}: use USER/REPO or USER/REPO@TAG")
    if "@" in repo or repo.count("/") > 1 or repo.startswith("/") or repo.endswith("/"):
        raise PrefgenError(f"bad Hub reference {shown!r}: a repo id is NAME or USER/NAME")
    if tag and not _REVISION.match(tag):
        raise PrefgenError(f"bad Hub reference {shown!r}: {tag!r} is not a tag or revision")
    return repo, tag or None
