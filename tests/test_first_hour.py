"""A new user's first hour (issue 28), end to end: a folder of their own mixed images, the README's "Your own
images" recipes copied out of README.md as printed, then build, show, query, derive, export, train, report and
rounds, offline, with the models shipped in the package."""

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw

from prefgen.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
SIZES = [(224, 224), (1024, 768), (640, 480), (300, 500), (800, 600), (256, 256)]
SIZES += [(512, 384), (720, 540), (333, 222), (600, 600), (480, 640), (1000, 700)]

pytestmark = pytest.mark.slow


def readme_recipes() -> dict[str, str]:
    """The YAML blocks of the README's "Your own images" section that start with ``# my-images/NAME.yaml``."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Your own images\n", 1)[1].split("\n## ", 1)[0]
    return {name: body for body, name in re.findall(r"```yaml\n(# my-images/(\w+)\.yaml\n.*?)```", section, re.S)}


def own_photos(folder: Path) -> None:
    """Twelve pictures as a user has them: many sizes, one grayscale, one RGBA, an upper-case .JPG in a sub-folder."""
    (folder / "trip").mkdir(parents=True)
    for i, size in enumerate(SIZES):
        mode = {3: "L", 5: "RGBA"}.get(i, "RGB")
        image = Image.new(mode, size, {"L": 90, "RGBA": (30, 120, 200, 128)}.get(mode, (20 * i, 160, 90)))
        w, h = size
        ImageDraw.Draw(image).ellipse([w // 4, h // 4, w // 2, h // 2], fill=200 if mode == "L" else (230, 40, 40))
        if i == 11:
            image.save(folder / "trip" / "IMG_0011.JPG", "JPEG")
        else:
            image.save(folder / f"photo-{i:02d}.{'jpg' if mode == 'RGB' else 'png'}")


def run(*args) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def test_own_images_from_the_readme_offline(tmp_path, monkeypatch):
    recipes = readme_recipes()
    assert sorted(recipes) == ["csr", "sena"]
    (tmp_path / "prefgen").symlink_to(ROOT / "prefgen")  # the README's layout: my-images/ at the repository root
    own_photos(tmp_path / "my-images" / "photos")
    for name, body in recipes.items():
        (tmp_path / "my-images" / f"{name}.yaml").write_text(body)
    monkeypatch.chdir(tmp_path)

    assert run("validate", "my-images/sena.yaml", "my-images/csr.yaml").count(": ok") == 2
    assert run("build", "my-images/sena.yaml", "-q").startswith("published v1 in out/my-images:")
    assert run("build", "my-images/csr.yaml", "-q").startswith("published v2 in out/my-images:")

    from prefgen.store.folder import Store
    from prefgen.store.query import run_query

    store = Store("out/my-images")
    v1, v2 = store.manifest("v1"), store.manifest("v2")
    assert v1.stats["source_items"] == 12 and not any(reason.endswith("image") for reason in v1.drops)
    assert v1.rows > 0 and v2.rows > 0 and v2.parent is None  # the CSR recipe does not continue the SENA one
    csr = run_query(store, "SELECT DISTINCT question, method, margin IS NULL AS unscored FROM v2").to_pylist()
    assert {(r["question"], r["method"], r["unscored"]) for r in csr} == {("Describe the image.", "csr", False)}
    assert run_query(store, "SELECT count(*) AS n FROM v1 WHERE margin IS NULL").to_pylist() == [{"n": 0}]

    assert "out/my-images@v1" in run("show", "out/my-images@v1", "-n", "2")
    positive = run_query(store, "SELECT count(*) AS n FROM v1 WHERE margin > 0").to_pylist()[0]["n"]
    run("derive", "out/my-images", "--sql", "SELECT * FROM v1 WHERE margin > 0", "-m", "positive margins")
    v3 = store.manifest("v3")
    assert (v3.rows, v3.parent, v3.parents) == (positive, "v1", ["v1"])
    run("export", "out/my-images@v1", "--format", "jsonl", "--out", "my-pairs")
    exported = [p for p in Path("my-pairs").rglob("*.jsonl")]
    assert sum(len(p.read_text().splitlines()) for p in exported) == v1.rows

    model = "prefgen/shapes/checkpoints/shapes-vlm"
    assert run("train", "--data", "out/my-images@v1", "--model", model, "--out", "runs/mine", "--max-steps", "2", "-q")
    lineage = json.loads(Path("runs/mine/lineage.json").read_text())
    assert lineage["data"]["version"] == "v1" and lineage["metrics"]["steps"] == 2
    assert "runs/mine" in run("report", "runs/mine", "--out", "runs/mine.html")
    html = Path("runs/mine.html").read_text()
    assert "<svg" in html and "v1" in html
    assert run("rounds", "runs/mine").splitlines()[0].split()[0] == "round"
