"""Names that become folder names, DuckDB views, Hub tags and dataset configs must be safe for all four."""

import re

from prefgen.core.errors import StoreError

VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
#: Names that would collide with a dataset config or a query view.
RESERVED_VERSIONS = frozenset({"default", "pairs", "versions", "rejects", "latest"})


def check_version_name(name: str) -> str:
    """Return ``name`` if it is a valid version name, else raise a StoreError saying why."""
    if not isinstance(name, str) or not re.match(VERSION_PATTERN, name) or ".." in name:
        raise StoreError(
            f"invalid version name {name!r}: use letters, digits, '.', '_' or '-' (at most 64, starting with a "
            "letter or digit, no '..' or '/')"
        )
    if name.lower() in RESERVED_VERSIONS:
        raise StoreError(f"invalid version name {name!r}: it is reserved ({', '.join(sorted(RESERVED_VERSIONS))})")
    return name
