"""Exports for the trainers people use (LLaMA-Factory, ms-swift): ms-swift's rows, one ``<image>`` per image and
never a stray one, several images in order, and no export of a version that ``prefgen verify`` finds damaged."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image

from prefgen.cli.main import cli
from prefgen.core.errors import StoreError
from prefgen.store.export import export_version
from prefgen.store.folder import Store

SHARD = "data/v1/train-00000-of-00001.parquet"


@pytest.fixture(autouse=True)
def _private_hf_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))


def _row(n: int, colours: list[str], question: str | None = None, chosen: str | None = None) -> dict:
    return {
        "id": f"pair-{n}",
        "images": [Image.new("RGB", (5, 4), colour) for colour in colours],
        "prompt": [{"role": "user", "content": question or f"What is in picture {n}?"}],
        "chosen": [{"role": "assistant", "content": chosen or f"good answer {n}"}],
        "rejected": [{"role": "assistant", "content": f"bad answer {n}"}],
        "image_id": f"img{n}" if len(colours) == 1 else None,
        "question": question or f"What is in picture {n}?",
    }


def _store(tmp_path: Path, *rows: dict) -> Store:
    store = Store.create(tmp_path / "my-store")
    draft = store.draft()
    draft.write_shard(0, list(rows))
    draft.publish(message="test")
    return store


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _colour(path: Path) -> tuple:
    with Image.open(path) as image:
        return image.convert("RGB").getpixel((0, 0))


# ---------------------------------------------------------------------------------------------- ms-swift


def test_swift_rows_are_messages_rejected_response_and_images(tmp_path):
    store = _store(tmp_path, _row(1, ["red"]), _row(2, ["blue"]))
    out = tmp_path / "out"
    result = export_version(store, None, "swift", out)
    assert (result.rows, result.files) == (2, [out / "data.jsonl"])
    assert sorted(p.name for p in out.iterdir()) == ["data.jsonl", "images"]
    assert _lines(out / "data.jsonl") == [
        {
            "messages": [
                {"role": "user", "content": "<image>What is in picture 1?"},
                {"role": "assistant", "content": "good answer 1"},
            ],
            "rejected_response": "bad answer 1",
            "images": ["images/img1.png"],
            "id": "pair-1",
        },
        {
            "messages": [
                {"role": "user", "content": "<image>What is in picture 2?"},
                {"role": "assistant", "content": "good answer 2"},
            ],
            "rejected_response": "bad answer 2",
            "images": ["images/img2.png"],
            "id": "pair-2",
        },
    ]
    assert _colour(out / "images" / "img2.png") == (0, 0, 255)


def test_cli_exports_swift(tmp_path):
    store = _store(tmp_path, _row(1, ["red"]))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["export", f"{store.root}@v1", "--format", "swift", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"exported 1 rows of v1 as swift to {out}\n"
    assert _lines(out / "data.jsonl")[0]["rejected_response"] == "bad answer 1"


# ---------------------------------------------------------------------------------------------- several images


@pytest.mark.parametrize("fmt, name", [("swift", "data.jsonl"), ("llamafactory", "data.json")])
def test_several_images_get_one_placeholder_each_in_order(tmp_path, fmt, name):
    store = _store(tmp_path, _row(1, ["red", "lime", "blue"]))
    out = tmp_path / "out"
    export_version(store, None, fmt, out)
    text = (out / name).read_text(encoding="utf-8")
    row = _lines(out / name)[0] if fmt == "swift" else json.loads(text)[0]
    user = row["messages"][0]["content"] if fmt == "swift" else row["conversations"][0]["value"]
    assert user == "<image><image><image>What is in picture 1?"
    assert [_colour(out / path) for path in row["images"]] == [(255, 0, 0), (0, 255, 0), (0, 0, 255)]


@pytest.mark.parametrize("fmt", ["swift", "llamafactory", "llava"])
def test_a_row_without_images_gets_no_placeholder(tmp_path, fmt):
    store = _store(tmp_path, _row(1, []))
    out = tmp_path / "out"
    export_version(store, None, fmt, out)
    assert "<image>" not in (out / ("data.jsonl" if fmt == "swift" else "data.json")).read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------- stray placeholders

STRAY = _row(1, ["red"], question="<image>\nWhat is in picture 1?", chosen="A red <image> square.")


def test_stray_placeholders_never_reach_swift(tmp_path, caplog):
    store = _store(tmp_path, STRAY, _row(2, ["blue"]))
    with caplog.at_level(logging.WARNING, logger="prefgen.store.export"):
        export_version(store, None, "swift", tmp_path / "out")
    row = _lines(tmp_path / "out" / "data.jsonl")[0]
    assert row["messages"] == [
        {"role": "user", "content": "<image>What is in picture 1?"},
        {"role": "assistant", "content": "A red square."},
    ]
    assert [r.getMessage() for r in caplog.records] == [
        "1 rows had <image> in their texts; it was taken out, and the format places one per image itself"
    ]


def test_stray_placeholders_never_reach_llamafactory_llava_or_seva(tmp_path):
    store = _store(tmp_path, STRAY)
    for fmt in ("llamafactory", "llava", "seva"):
        export_version(store, None, fmt, tmp_path / fmt)
    llamafactory = json.loads((tmp_path / "llamafactory" / "data.json").read_text(encoding="utf-8"))[0]
    assert llamafactory["conversations"] == [{"from": "human", "value": "<image>What is in picture 1?"}]
    assert llamafactory["chosen"] == {"from": "gpt", "value": "A red square."}
    llava = json.loads((tmp_path / "llava" / "data.json").read_text(encoding="utf-8"))[0]
    assert llava["conversations"] == [
        {"from": "human", "value": "<image>\nWhat is in picture 1?"},
        {"from": "gpt", "value": "A red square."},
    ]
    seva = json.loads((tmp_path / "seva" / "data.json").read_text(encoding="utf-8"))[0]
    assert (seva["question"], seva["chosen"]) == ("What is in picture 1?", "A red square.")


def test_jsonl_keeps_the_texts_as_stored(tmp_path):
    store = _store(tmp_path, STRAY)
    export_version(store, None, "jsonl", tmp_path / "out")
    row = _lines(tmp_path / "out" / "data.jsonl")[0]
    assert row["prompt"] == [{"role": "user", "content": "<image>\nWhat is in picture 1?"}]


# ---------------------------------------------------------------------------------------------- damaged versions


def _rewrite_answer(store: Store) -> None:
    """Change one stored answer in place: the file is still valid parquet, only its hash tells."""
    path = store.root / SHARD
    table = pq.read_table(path)
    rows = table.to_pylist()
    rows[0]["chosen"] = [{"role": "assistant", "content": "an answer nobody published"}]
    path.chmod(0o644)
    pq.write_table(type(table).from_pylist(rows, schema=table.schema), path)


def test_a_version_rewritten_after_publishing_is_not_exported(tmp_path):
    store = _store(tmp_path, _row(1, ["red"]), _row(2, ["blue"]))
    _rewrite_answer(store)
    size = (store.root / SHARD).stat().st_size
    manifest_bytes = store.manifest("v1").files[0].bytes
    with pytest.raises(StoreError) as caught:
        export_version(store, None, "swift", tmp_path / "out")
    if size == manifest_bytes:
        what = "sha256 differs from the manifest (its bytes changed after it was published)"
    else:
        what = f"{size} bytes where the manifest says {manifest_bytes}"
    assert str(caught.value) == f"version v1 is damaged: {SHARD}: {what}; run `prefgen verify {store.root}`"
    assert not (tmp_path / "out").exists()


def test_a_stray_file_in_the_version_stops_the_export_as_verify_would(tmp_path):
    store = _store(tmp_path, _row(1, ["red"]))
    folder = store.root / "data" / "v1"
    folder.chmod(0o755)
    (folder / "extra.parquet").write_bytes(b"PAR1")
    result = CliRunner().invoke(cli, ["export", str(store.root), "--format", "llamafactory", "--out", "x"])
    assert result.exit_code == 1
    assert result.stderr == (
        "error: version v1 is damaged: data/v1/extra.parquet: not in the manifest of v1 (a stray file); "
        f"run `prefgen verify {store.root}`\n"
    )
    verify = CliRunner().invoke(cli, ["verify", f"{store.root}@v1"])
    stray = "data/v1/extra.parquet: not in the manifest of v1 (a stray file)\n"
    assert (verify.exit_code, verify.stdout) == (1, stray)


def test_every_problem_is_counted_in_the_one_line(tmp_path):
    store = _store(tmp_path, _row(1, ["red"]))
    folder = store.root / "data" / "v1"
    folder.chmod(0o755)
    for name in ("a.parquet", "b.parquet"):
        (folder / name).write_bytes(b"PAR1")
    with pytest.raises(StoreError, match=r"^version v1 is damaged: data/v1/a\.parquet: .* \(and 1 more\); run "):
        export_version(store, "v1", "llava", tmp_path / "out")
