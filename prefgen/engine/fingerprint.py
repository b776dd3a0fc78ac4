"""What code a stage runs, for the cache key: every prefgen module it imports, transitively, and the versions of the
libraries that shape its output.

The imports are read from the source files (``ast``), not from ``sys.modules``, so the answer does not depend on
what happened to be imported already, and imports inside functions (the lazy ones that keep start-up fast) count
like any other. Importing ``prefgen.a.b`` runs ``prefgen/__init__.py`` and ``prefgen/a/__init__.py`` too, so
those files count; what they import in turn only defines names, and is followed where a module imports the package
itself (``from prefgen.a import name``), since only then can those names be used. A package that resolves names
lazily (``prefgen.models``' ``__getattr__``) names its modules as strings; those are followed in that case too.
Imports under ``if TYPE_CHECKING:`` never run and are left out.

A stage's closure starts at its own module and at the runtime of each model it declares on the recipe's engine
(``models/hf/vlm.py`` or ``models/vllm/engine.py`` for a ``vlm`` stage: decoding, sentence steps and log-probs run
there, through the object the build hands the stage).
Editing any file in a stage's closure changes its fingerprint and recomputes it (and what follows it); editing a
file outside it (the store, the exporter, the CLI) recomputes nothing.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import re
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

import prefgen
from prefgen.engine.model_pool import ENGINE_LIBRARIES, RUNTIME_MODULES

#: Distributions whose version can change what a stage writes (decoding, numerics, image ops, tokenization).
LIBRARIES = (
    "torch",
    "transformers",
    "tokenizers",
    "open_clip_torch",
    "albumentations",
    "opencv-python-headless",
    "pillow",
    "numpy",
)
_ROOT = Path(prefgen.__file__).parent
_MODULE_NAME = re.compile(r"^prefgen(\.[A-Za-z_]\w*)+$")


def module_file(name: str) -> Path | None:
    """The source file of a prefgen module or package, or None when there is none."""
    if not _is_prefgen(name):
        return None
    parts = name.split(".")[1:]
    for path in (_ROOT.joinpath(*parts).with_suffix(".py"), _ROOT.joinpath(*parts, "__init__.py")):
        if parts and path.is_file():
            return path
    return _ROOT / "__init__.py" if not parts else None


@functools.lru_cache(maxsize=None)
def _imports(name: str, follow_strings: bool) -> tuple[str, ...]:
    """The prefgen modules that importing ``name`` (and, with ``follow_strings``, using its lazy names) can run."""
    path = module_file(name)
    if path is None:
        return ()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, bool]] = []
    for node in _running_nodes(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, False) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.append((submodule, False) if module_file(submodule) else (base, True))
        elif follow_strings and isinstance(node, ast.Constant) and isinstance(node.value, str):
            if _MODULE_NAME.match(node.value) and module_file(node.value):
                found.append((node.value, False))
    return tuple(sorted({f"{module}|{int(strings)}" for module, strings in found if _is_prefgen(module)}))


def _running_nodes(tree: ast.AST) -> Iterable[ast.AST]:
    """Every node of the module except those under ``if TYPE_CHECKING:``."""
    pending = [tree]
    while pending:
        node = pending.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
            continue
        pending.extend(ast.iter_child_nodes(node))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    base = package.split(".")[: len(package.split(".")) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _is_prefgen(module: str) -> bool:
    return module == "prefgen" or module.startswith("prefgen.")


def module_closure(names: Iterable[str]) -> list[str]:
    """Every prefgen module that importing ``names`` can run, sorted. A parent package runs first too and counts;
    its own imports only define names, so they are followed only where the package is imported by name."""
    expanded: dict[str, bool] = {}  # module -> whether its lazy (string) names were followed too
    parents: set[str] = set()
    pending = [(name, False) for name in names]
    while pending:
        name, strings = pending.pop()
        if not module_file(name) or (name in expanded and (expanded[name] or not strings)):
            continue
        expanded[name] = expanded.get(name, False) or strings
        parts = name.split(".")
        parents.update(".".join(parts[:k]) for k in range(1, len(parts)))
        for entry in _imports(name, strings):
            module, flag = entry.split("|")
            pending.append((module, flag == "1"))
    return sorted(set(expanded) | parents)


def library_versions(extra: Iterable[str] = ()) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in (*LIBRARIES, *extra):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def code_fingerprint(names: Iterable[str], libraries: Iterable[str] = ()) -> str:
    """A hash of the source of every module in the closure of ``names`` and of the library versions (``LIBRARIES``
    and ``libraries``). A module from outside prefgen (a user's own stage) counts by its own source, without its
    imports."""
    names = list(names)
    files = [(module, _source_digest(module)) for module in names if not _is_prefgen(module)]
    for module in module_closure(names):
        files.append((module, hashlib.sha256(module_file(module).read_bytes()).hexdigest()))
    text = repr((prefgen.__version__, files, sorted(library_versions(libraries).items())))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _source_digest(module: str) -> str:
    try:
        return hashlib.sha256(inspect.getsource(sys.modules[module]).encode()).hexdigest()
    except (KeyError, OSError, TypeError):  # no source (interactive, frozen): the name is all there is
        return module


def stage_modules(params_cls: type, engine: str = "hf") -> list[str]:
    """Where a stage's code starts: its declaration, its runtime, the runtime of each model it declares on the
    recipe's VLM ``engine`` (a stage calls the VLM's decoding and the CLIP scorer through the objects the build
    hands it), and any ``code_modules`` it names."""
    modules = {params_cls.__module__, *getattr(params_cls, "code_modules", ())}
    modules.update(RUNTIME_MODULES[name][engine] for name in getattr(params_cls, "models", ()))
    if getattr(params_cls, "runtime", None) is not None:
        modules.add(params_cls.runtime.__module__)
    return sorted(modules)


def code_hash(params_cls: type, engine: str = "hf") -> str:
    """The fingerprint of the code a stage runs on the VLM ``engine`` (see the module docstring)."""
    libraries = ENGINE_LIBRARIES[engine] if "vlm" in getattr(params_cls, "models", ()) else ()
    return code_fingerprint(stage_modules(params_cls, engine), libraries)


def torch_kernels() -> dict:
    """What beside code, weights and libraries changes a model stage's numbers: torch's CPU kernels (AVX2, AVX512,
    ...) and its threads, as this process runs them: a search that ranks by summed log-probs and cosines turns a
    last-bit difference between kernels into another pair (docs/loops.md, "Reruns"). Empty when no stage loaded
    torch here (a Ray build's workers may differ from the driver)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return {}
    return {"torch_cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch_threads": torch.get_num_threads()}
