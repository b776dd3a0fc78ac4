"""``prefgen report``: one self-contained HTML file (no server, nothing fetched) for a dataset version, for the
comparison of two versions, or for one or several `prefgen train --rounds` folders or `prefgen train --data` runs
(a single run reads as a run of one round: its curves, settings and the data version it trained on).

    write_report(["out/store@v2"], "report.html")                   # summary, histograms, gallery of pairs
    write_report(["out/store"], "diff.html", compare=("v1", "v2"))   # what changed between two versions
    write_report(["runs/csr", "runs/likelihood"], "rounds.html")    # per-round metrics, overlaid; lineage

Templates are jinja2 with autoescape; charts are inline SVG drawn in ``charts``; the gallery's rows and thumbnails
are JSON in ``<script type="application/json">`` elements, rendered by a small script with ``textContent`` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefgen.core.errors import PrefgenError
from prefgen.core.refs import split_store_ref


@dataclass
class ReportResult:
    path: Path
    kind: str  # "version", "compare", "rounds" or "training" (single runs)
    subject: str
    bytes: int

    def summary(self) -> str:
        return f"wrote the {self.kind} report of {self.subject} to {self.path} ({self.bytes / 1e6:.1f} MB)"


def write_report(targets: list[str], out: str | Path, compare: tuple[str, str] | None = None) -> ReportResult:
    """Detect what ``targets`` are (one ``STORE[@VERSION]``, or rounds folders) and write their report to ``out``."""
    from prefgen.report.render import write_html

    if not targets:
        raise PrefgenError("give a store (STORE[@VERSION]) or one or more rounds folders")
    kinds = [detect(t) for t in targets]
    if kinds[0] == "store":
        if len(targets) > 1:
            raise PrefgenError("give one store at a time (several folders are compared only as rounds runs)")
        from prefgen.store.query import parse_ref

        store, version = parse_ref(targets[0])
        if compare is not None:
            if version is not None:
                raise PrefgenError("give the store without @VERSION together with --compare V1 V2")
            from prefgen.report.version import compare_context

            context = compare_context(store, *compare)
            path = write_html("compare.html", context, Path(out))
            return ReportResult(path, "compare", context["title"], path.stat().st_size)
        from prefgen.report.version import version_context

        context = version_context(store, version)
        path = write_html("version.html", context, Path(out), script="gallery.js")
        return ReportResult(path, "version", context["title"], path.stat().st_size)
    if compare is not None:
        raise PrefgenError("--compare compares two versions of a store; give a store, not a rounds folder")
    wrong = [t for t, k in zip(targets, kinds) if k != "rounds"]
    if wrong:
        raise PrefgenError(f"{wrong[0]} is a store; a rounds report takes rounds folders only")
    from prefgen.report.rounds import rounds_context
    from prefgen.train.lineage import RunFolder

    context = rounds_context([Path(t) for t in targets])
    path = write_html("rounds.html", context, Path(out))
    kind = "training" if all(RunFolder(t).single_run for t in targets) else "rounds"  # `train --data` output
    return ReportResult(path, kind, ", ".join(targets), path.stat().st_size)


def detect(target: str) -> str:
    """ "store" for a store folder (or STORE@VERSION), "rounds" for a rounds folder; else a one-line error."""
    from prefgen.report.rounds import is_rounds_folder

    path = Path(target)
    if not path.exists():
        root, version = split_store_ref(target)
        if version is not None and (Path(root) / "versions").is_dir():
            return "store"
    if not path.exists():
        raise PrefgenError(f"{target} does not exist (give a store folder, STORE@VERSION or a rounds folder)")
    if (path / "versions").is_dir():
        return "store"
    if is_rounds_folder(path):
        return "rounds"
    raise PrefgenError(
        f"{target} is neither a prefgen store (no versions/ folder) nor a rounds folder "
        "(no round-*/model/lineage.json) or training run (no lineage.json)"
    )
