"""Arm the torchvision shim in every interpreter of an environment, not only in those that ``import prefgen``.

    python -m prefgen._compat.startup_hook install    # write prefgen-tvshim.pth into this interpreter's site-packages
    python -m prefgen._compat.startup_hook uninstall  # remove it
    python -m prefgen._compat.startup_hook status     # is it there and current? (exit status 1 when not)
    ... --target DIR                                  # use DIR instead of this interpreter's purelib directory

At start-up, Python's ``site`` module executes each line of a site-packages ``*.pth`` file that begins with
``import``. The line written here defines one small finder class and puts an instance first on ``sys.meta_path``;
it imports nothing (not the ``prefgen`` package, not torch) and only checks that the shim file exists, so it adds
well under a millisecond to start-up. On the first ``import torchvision`` that finder runs the real shim:
``prefgen._compat.tvshim`` when prefgen is already imported, else ``prefgen/_compat/tvshim.py`` loaded from its path
as the
stand-alone module ``_prefgen_tvshim_startup``. The shim does nothing where torchvision's compiled ops load (see
its docstring).

The shim's absolute path is written into the ``.pth`` file, so it works the same for an editable install (the path
points into the checkout) and a regular one (it points into site-packages). When that file is gone (prefgen
uninstalled, or the checkout moved) the line arms nothing; run ``install`` again after moving a checkout, and
``uninstall`` before ``pip uninstall prefgen`` to remove the ``.pth`` file too. ``import prefgen`` still arms the
shim itself, and recognises the start-up hook's finder (both carry ``prefgen_tvshim_finder``), so the two never
stack.
"""

from __future__ import annotations

import argparse
import os
import site
import sys
import sysconfig
from pathlib import Path

PTH_NAME = "prefgen-tvshim.pth"
STARTUP_MODULE = "_prefgen_tvshim_startup"

HOOK_CLASS = "PrefgenTorchvisionHook"

# Run by the .pth line in a fresh namespace; "@SHIM@" becomes the quoted path of _compat/tvshim.py. At start-up it only
# defines the class and inserts the finder (after a stat of the shim file, so a stale .pth arms nothing). The finder
# acts once, on the first import of torchvision, by calling the real shim's finder; it stays on sys.meta_path,
# inert, so that prefgen._compat.tvshim.install() still sees the interpreter as armed. A failure to load the shim is
# one
# line on stderr, and torchvision's import then goes on (and fails) as it would without the hook.
_BOOT = """\
import os, sys
class @CLASS@:
    prefgen_tvshim_finder = True
    shim_path = @SHIM@
    done = False
    def find_spec(self, name, path=None, target=None):
        if name != "torchvision" or self.done:
            return None
        self.done = True
        try:
            shim = sys.modules.get("prefgen._compat.tvshim") or sys.modules.get("@MODULE@")
            if shim is None:
                import importlib.util
                spec = importlib.util.spec_from_file_location("@MODULE@", self.shim_path)
                shim = importlib.util.module_from_spec(spec)
                sys.modules[spec.name] = shim
                try:
                    spec.loader.exec_module(shim)
                except BaseException:
                    del sys.modules[spec.name]
                    raise
            return shim._TorchvisionFinder().find_spec(name, path, target)
        except Exception as exc:
            sys.stderr.write("@PTH@: prefgen's torchvision shim failed: %r\\n" % (exc,))
            return None
    def __repr__(self):
        return "<prefgen torchvision shim hook from @PTH@>"
if os.path.isfile(@CLASS@.shim_path) and not any(
        getattr(finder, "prefgen_tvshim_finder", False) is True for finder in sys.meta_path):
    sys.meta_path.insert(0, @CLASS@())
"""


def shim_path() -> Path:
    """The ``_compat/tvshim.py`` this prefgen runs from: in the checkout for an editable install, else in
    site-packages."""
    from prefgen._compat import tvshim as _tvshim

    return Path(_tvshim.__file__).resolve()


def pth_text(shim: Path | None = None) -> str:
    """The content of ``prefgen-tvshim.pth``: two comment lines and the one ``import`` line that site executes."""
    shim = shim_path() if shim is None else shim
    boot = _BOOT
    for key, value in {
        "@CLASS@": HOOK_CLASS,
        "@MODULE@": STARTUP_MODULE,
        "@PTH@": PTH_NAME,
        "@SHIM@": repr(str(shim)),
    }.items():
        boot = boot.replace(key, value)
    return (
        "# Written by `python -m prefgen._compat.startup_hook install`: arms prefgen's torchvision shim at "
        "interpreter\n"
        "# start-up (torchvision on CPU torch). Remove with `python -m prefgen._compat.startup_hook uninstall`.\n"
        f"import sys; exec({boot!r}, {{'__name__': {PTH_NAME!r}}})\n"
    )


def default_target() -> Path:
    """The running interpreter's purelib directory (a virtualenv's site-packages)."""
    return Path(sysconfig.get_paths()["purelib"])


def _site_dirs() -> set[Path]:
    dirs = list(site.getsitepackages()) if hasattr(site, "getsitepackages") else []
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return {Path(d).resolve() for d in dirs}


def install(target: Path | None = None) -> tuple[Path, str]:
    """Write the ``.pth`` file into ``target``; returns its path and one of "written", "updated", "unchanged"."""
    target = default_target() if target is None else Path(target)
    if not target.is_dir():
        raise FileNotFoundError(f"{target} is not a directory")
    pth = target / PTH_NAME
    text = pth_text()
    old = pth.read_text(encoding="utf-8") if pth.is_file() else None
    if old == text:
        return pth, "unchanged"
    tmp = pth.with_name(f".{PTH_NAME}.{os.getpid()}.tmp")  # a dot-name: site skips it if we die half-way
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, pth)
    return pth, "written" if old is None else "updated"


def uninstall(target: Path | None = None) -> tuple[Path, bool]:
    """Remove the ``.pth`` file from ``target``; returns its path and whether there was one."""
    pth = (default_target() if target is None else Path(target)) / PTH_NAME
    try:
        pth.unlink()
    except FileNotFoundError:
        return pth, False
    return pth, True


def status(target: Path | None = None) -> tuple[Path, str]:
    """Returns the ``.pth`` path and "current", "stale" (written for another shim path or version) or "absent"."""
    pth = (default_target() if target is None else Path(target)) / PTH_NAME
    if not pth.is_file():
        return pth, "absent"
    return pth, "current" if pth.read_text(encoding="utf-8") == pth_text() else "stale"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m prefgen._compat.startup_hook",
        description="Arm prefgen's torchvision shim at interpreter start-up through a .pth file, so that "
        "torchvision, open_clip, timm and transformers' image processors import on CPU torch in "
        "scripts that never import prefgen.",
    )
    parser.add_argument("action", choices=["install", "uninstall", "status"])
    parser.add_argument(
        "--target",
        type=Path,
        metavar="DIR",
        help=f"site directory to use (default: this interpreter's purelib, {default_target()})",
    )
    args = parser.parse_args(argv)
    try:
        if args.action == "install":
            pth, what = install(args.target)
            print(
                {
                    "written": f"wrote {pth}",
                    "updated": f"updated {pth}",
                    "unchanged": f"{pth} is already current, left as is",
                }[what]
            )
            print(f"  at start-up it arms a finder that runs {shim_path()} on the first import of torchvision")
            if args.target is not None and Path(args.target).resolve() not in _site_dirs():
                print(
                    f"  note: {args.target} is not a site directory of {sys.executable}; only interpreters that "
                    "use it as one (site.addsitedir) read it"
                )
        elif args.action == "uninstall":
            pth, removed = uninstall(args.target)
            print(f"removed {pth}" if removed else f"nothing to remove: {pth} does not exist")
        else:
            pth, state = status(args.target)
            print(f"{pth}: {state}")
            hooked = any(type(finder).__name__ == HOOK_CLASS for finder in sys.meta_path)
            print(f"  start-up hook armed in this interpreter: {'yes' if hooked else 'no'}")
            return 0 if state == "current" else 1
    except OSError as error:
        print(f"error: {error}; pass --target DIR to use another site directory", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
