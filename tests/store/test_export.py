"""Tests of ``prefgen export``: each format's exact rows, image files, dedupe, versions and refusals."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from prefgen.cli.main import cli
from prefgen.core.errors import PrefgenError, StoreError
from prefgen.store import export as export_module
from prefgen.store.export import ExportResult, export_version
from prefgen.store.folder import Store

CREATED = datetime(2025, 3, 4, 5, 6, 7, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def _private_hf_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))


def _image(colour: str, size=(5, 4)) -> Image.Image:
    return Image.new("RGB", size, colour)


def _jpeg_bytes(colour: str) -> bytes:
    buffer = io.BytesIO()
    _image(colour, (8, 8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _row(n: int, images: list, image_id: str | None = None, question: str | None = None) -> dict:
    question = question or f"What is in picture {n}?"
    return {
        "id": f"pair-{n}",
        "images": images,
        "prompt": [{"role": "user", "content": question}],
        "chosen": [{"role": "assistant", "content": f"good answer {n}"}],
        "rejected": [{"role": "assistant", "content": f"bad answer {n}"}],
        "image_id": image_id,
        "question": question,
        "chosen_score": 0.75,
        "rejected_score": 0.25,
        "margin": 0.5,
        "created_at": CREATED,
    }


def _publish(store: Store, *shards: list[dict], message: str = "test") -> str:
    draft = store.draft()
    for index, rows in enumerate(shards):
        draft.write_shard(index, rows)
    return draft.publish(message=message).version


@pytest.fixture
def store(tmp_path) -> Store:
    """A store whose v1 holds two rows with a red and a blue PNG."""
    store = Store.create(tmp_path / "my-store")
    _publish(store, [_row(1, [_image("red")], image_id="img_red"), _row(2, [_image("blue")], image_id="img_blue")])
    return store


def _data(out: Path, name: str = "data.json"):
    text = (out / name).read_text(encoding="utf-8")
    return json.loads(text) if name.endswith(".json") else [json.loads(line) for line in text.splitlines()]


def _pixels(path) -> bytes:
    with Image.open(path) as image:
        return image.convert("RGB").tobytes()


def _first_pixel(path: Path) -> tuple:
    with Image.open(path) as image:
        return image.convert("RGB").getpixel((0, 0))


def test_llava_row_structure(store, tmp_path):
    out = tmp_path / "out"
    export_version(store, "v1", "llava", out)
    assert _data(out)[0] == {
        "id": "pair-1",
        "image": "images/img_red.png",
        "conversations": [
            {"from": "human", "value": "<image>\nWhat is in picture 1?"},
            {"from": "gpt", "value": "good answer 1"},
        ],
        "rejected_conversations": [
            {"from": "human", "value": "<image>\nWhat is in picture 1?"},
            {"from": "gpt", "value": "bad answer 1"},
        ],
    }


def test_seva_row_structure(store, tmp_path):
    out = tmp_path / "out"
    export_version(store, "v1", "seva", out)
    assert _data(out)[1] == {
        "id": "pair-2",
        "question": "What is in picture 2?",
        "chosen": "good answer 2",
        "reject": "bad answer 2",
        "image": "images/img_blue.png",
    }


def test_llamafactory_row_structure(store, tmp_path):
    out = tmp_path / "out"
    export_version(store, "v1", "llamafactory", out)
    assert _data(out)[0] == {
        "conversations": [{"from": "human", "value": "<image>What is in picture 1?"}],
        "chosen": {"from": "gpt", "value": "good answer 1"},
        "rejected": {"from": "gpt", "value": "bad answer 1"},
        "images": ["images/img_red.png"],
    }


def test_llamafactory_dataset_info(store, tmp_path):
    out = tmp_path / "out"
    result = export_version(store, "v1", "llamafactory", out)
    assert result.files == [out / "data.json", out / "dataset_info.json"]
    assert json.loads((out / "dataset_info.json").read_text(encoding="utf-8")) == {
        "prefgen_my_store_v1": {
            "file_name": "data.json",
            "formatting": "sharegpt",
            "ranking": True,
            "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected", "images": "images"},
        }
    }


def test_llamafactory_has_one_placeholder_per_image(tmp_path):
    store = Store.create(tmp_path / "multi")
    _publish(store, [_row(1, [_image("red"), _image("green")])])
    out = tmp_path / "out"
    export_version(store, None, "llamafactory", out)
    row = _data(out)[0]
    assert row["conversations"][0]["value"] == "<image><image>What is in picture 1?"
    assert len(row["images"]) == 2 and row["images"][0] != row["images"][1]
    assert [_first_pixel(out / p) for p in row["images"]] == [(255, 0, 0), (0, 128, 0)]


@pytest.mark.parametrize("fmt", ["llava", "seva"])
def test_one_image_formats_refuse_a_row_with_several(tmp_path, fmt):
    store = Store.create(tmp_path / "multi")
    _publish(store, [_row(1, [_image("red")]), _row(2, [_image("red"), _image("green")])])
    out = tmp_path / "out"
    with pytest.raises(
        PrefgenError,
        match=rf"^row 'pair-2' has 2 images and the {fmt} format holds one per pair; "
        "export as llamafactory, swift or jsonl, which keep every image$",
    ):
        export_version(store, None, fmt, out)
    assert not out.exists()


def test_jsonl_row_keeps_every_column(store, tmp_path):
    out = tmp_path / "out"
    result = export_version(store, "v1", "jsonl", out)
    assert result.files == [out / "data.jsonl"]
    assert _data(out, "data.jsonl")[0] == {
        "id": "pair-1",
        "images": ["images/img_red.png"],
        "prompt": [{"role": "user", "content": "What is in picture 1?"}],
        "chosen": [{"role": "assistant", "content": "good answer 1"}],
        "rejected": [{"role": "assistant", "content": "bad answer 1"}],
        "image_id": "img_red",
        "question": "What is in picture 1?",
        "chosen_score": 0.75,
        "rejected_score": 0.25,
        "margin": 0.5,
        "created_at": "2025-03-04T05:06:07+00:00",
    }


def test_jsonl_writes_nan_scores_as_null(tmp_path):
    store = Store.create(tmp_path / "nan")
    row = _row(1, [_image("red")])
    row["margin"] = float("nan")
    _publish(store, [row])
    out = tmp_path / "out"
    export_version(store, None, "jsonl", out)
    assert "NaN" not in (out / "data.jsonl").read_text(encoding="utf-8")
    assert _data(out, "data.jsonl")[0]["margin"] is None


def test_images_decode_to_the_input_pixels(store, tmp_path):
    out = tmp_path / "out"
    export_version(store, "v1", "seva", out)
    assert sorted(p.name for p in (out / "images").iterdir()) == ["img_blue.png", "img_red.png"]
    assert _pixels(out / "images" / "img_red.png") == _image("red").tobytes()
    assert _pixels(out / "images" / "img_blue.png") == _image("blue").tobytes()


def test_image_without_id_is_named_by_hash_with_its_real_format(tmp_path):
    jpeg = _jpeg_bytes("yellow")
    store = Store.create(tmp_path / "jpeg")
    _publish(store, [_row(1, [{"bytes": jpeg, "path": None}])])
    out = tmp_path / "out"
    export_version(store, None, "seva", out)
    name = f"{hashlib.sha256(jpeg).hexdigest()[:16]}.jpg"
    assert _data(out)[0]["image"] == f"images/{name}"
    assert (out / "images" / name).read_bytes() == jpeg
    assert _pixels(out / "images" / name) == _pixels(io.BytesIO(jpeg))


def test_shared_images_are_written_once(tmp_path):
    store = Store.create(tmp_path / "shared")
    rows = [
        _row(1, [_image("red")], image_id="same"),
        _row(2, [_image("red")], image_id="same"),
        _row(3, [_image("red")]),
        _row(4, [_image("red")]),
    ]
    _publish(store, rows)
    out = tmp_path / "out"
    export_version(store, None, "llava", out)
    images = [row["image"] for row in _data(out)]
    assert images[0] == images[1] == "images/same.png"
    assert images[2] == images[3] and images[2] != images[0]
    assert len(list((out / "images").iterdir())) == 2


def test_same_image_id_with_other_bytes_gets_its_own_file(tmp_path):
    store = Store.create(tmp_path / "clash")
    _publish(store, [_row(1, [_image("red")], image_id="same"), _row(2, [_image("blue")], image_id="same")])
    out = tmp_path / "out"
    export_version(store, None, "seva", out)
    first, second = (row["image"] for row in _data(out))
    assert first == "images/same.png" and second != first
    assert _first_pixel(out / second) == (0, 0, 255)


def test_latest_version_is_the_default(store, tmp_path):
    _publish(store, [_row(3, [_image("green")])], message="second")
    out = tmp_path / "out"
    result = export_version(store, None, "seva", out)
    assert (result.version, result.rows) == ("v2", 1)
    assert [row["id"] for row in _data(out)] == ["pair-3"]


def test_explicit_version_is_exported(store, tmp_path):
    _publish(store, [_row(3, [_image("green")])], message="second")
    out = tmp_path / "out"
    result = export_version(store, "v1", "seva", out)
    assert result == ExportResult(version="v1", rows=2, files=[out / "data.json"])
    assert [row["id"] for row in _data(out)] == ["pair-1", "pair-2"]


def test_rows_of_every_shard_are_exported_in_order(tmp_path):
    store = Store.create(tmp_path / "shards")
    _publish(store, [_row(1, [_image("red")])], [_row(2, [_image("blue")]), _row(3, [_image("green")])])
    out = tmp_path / "out"
    result = export_version(store, None, "jsonl", out)
    assert result.rows == 3
    assert [row["id"] for row in _data(out, "data.jsonl")] == ["pair-1", "pair-2", "pair-3"]


def test_non_ascii_text_is_written_as_utf8(tmp_path):
    store = Store.create(tmp_path / "utf8")
    _publish(store, [_row(1, [_image("red")], question="Qu'est-ce que c'est ? 猫")])
    out = tmp_path / "out"
    export_version(store, None, "seva", out)
    assert "Qu'est-ce que c'est ? 猫" in (out / "data.json").read_text(encoding="utf-8")


def test_non_empty_out_is_refused_and_left_untouched(store, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(PrefgenError, match="exists and is not empty; choose an empty folder"):
        export_version(store, "v1", "seva", out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert (out / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "hf-home") == ["my-store", "out"]


def test_empty_existing_out_is_filled(store, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    export_version(store, "v1", "seva", out)
    assert sorted(p.name for p in out.iterdir()) == ["data.json", "images"]


def test_unknown_format_is_refused(store, tmp_path):
    with pytest.raises(
        PrefgenError, match="unknown export format 'parquet'; choose one of llava, seva, llamafactory, swift, jsonl"
    ):
        export_version(store, "v1", "parquet", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unknown_version_is_refused(store, tmp_path):
    with pytest.raises(StoreError, match="unknown version 'v9'"):
        export_version(store, "v9", "seva", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_failure_midway_leaves_no_export(store, tmp_path, monkeypatch):
    real = export_module._write_image
    calls = []

    def fail_on_second(folder, image, row):
        calls.append(row["id"])
        if len(calls) == 2:
            raise OSError("disk full")
        return real(folder, image, row)

    monkeypatch.setattr(export_module, "_write_image", fail_on_second)
    with pytest.raises(OSError, match="disk full"):
        export_version(store, "v1", "llava", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "hf-home") == ["my-store"]


def test_cli_exports_a_version(store, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["export", f"{store.root}@v1", "--format", "seva", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"exported 2 rows of v1 as seva to {out}\n"
    assert sorted(p.name for p in out.iterdir()) == ["data.json", "images"]
    assert [row["id"] for row in _data(out)] == ["pair-1", "pair-2"]
    assert sorted(p.name for p in (out / "images").iterdir()) == ["img_blue.png", "img_red.png"]


def test_cli_unknown_version_is_one_error_line(store, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["export", f"{store.root}@v9", "--format", "seva", "--out", str(out)])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown version 'v9'")
    assert "Traceback" not in result.output
    assert not out.exists()


def test_export_loads_neither_datasets_nor_torch(store, tmp_path):
    code = (
        "import sys; from pathlib import Path; from prefgen.store.folder import Store; "
        "from prefgen.store.export import export_version; "
        f"export_version(Store({str(store.root)!r}), None, 'jsonl', Path({str(tmp_path / 'out')!r})); "
        "print(sorted(m for m in ('datasets', 'torch') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    assert (tmp_path / "out" / "data.jsonl").is_file()
