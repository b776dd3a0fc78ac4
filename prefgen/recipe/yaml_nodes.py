"""Problems located in the recipe file: the YAML node (and so the line) a dotted path points at."""

from __future__ import annotations

from dataclasses import dataclass

import yaml


@dataclass(frozen=True)
class Problem:
    path: str  # e.g. "stages[2].type"
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.path + ': ' if self.path else ''}{self.message}"


def node_at(root: yaml.Node, loc, key: bool = False) -> yaml.Node | None:
    """The YAML node at a location; with ``key`` the key node of the last step. Falls back to the deepest parent."""
    node = root
    for depth, part in enumerate(loc):
        last = depth == len(loc) - 1
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == str(part):
                    node = k if (key and last) else v
                    break
            else:
                return node
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return node
    return node


def line_of(root: yaml.Node, loc) -> int | None:
    node = node_at(root, loc)
    return node.start_mark.line + 1 if node is not None else None


def duplicate_keys(node: yaml.Node, loc: tuple) -> list[Problem]:
    problems = []
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for k, v in node.value:
            if k.value in seen:
                problems.append(
                    Problem(
                        format_path([*loc, k.value]),
                        k.start_mark.line + 1,
                        "key given twice; the later value would silently win",
                    )
                )
            seen.add(k.value)
            problems += duplicate_keys(v, (*loc, k.value))
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            problems += duplicate_keys(v, (*loc, i))
    return problems


def format_path(loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
