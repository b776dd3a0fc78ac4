"""Sources: every image file, manifest row or dataset row becomes a row with an upright RGB image, or a Drop with a
stable reason. The bad-image corpus is generated here, file by file, so that each case says what it is."""

import hashlib
import io
import json
import os
import random
import signal
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from prefgen.core.errors import PrefgenError
from prefgen.engine.sources.reader import SourceItem, list_items, load_rows
from prefgen.models import images
from prefgen.recipe.sources import HFDatasetSource, ImageFolderSource, Limits, ManifestSource
from prefgen.stages.base import Drop

RED, BLUE, WHITE = (200, 10, 10), (10, 10, 200), (255, 255, 255)


# ---------------------------------------------------------------------------------------------------- helpers


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def write(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def noise(size=(64, 48)) -> Image.Image:
    """Random pixels: they do not compress, so cutting the file really cuts image data."""
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def png(color=RED, size=(8, 6)) -> bytes:
    return encode(Image.new("RGB", size, color), "PNG")


def read(source, base_dir, limits=None, seed=0):
    items = list_items(source, limits or Limits(), seed, base_dir)
    return items, load_rows(source, items, base_dir)


def folder(tmp_path, **options):
    return ImageFolderSource(type="image_folder", path="images", **options), tmp_path


def by_path(out) -> dict:
    return {(o.row if isinstance(o, Drop) else o)["image_path"]: o for o in out}


def decoded(row) -> Image.Image:
    image = Image.open(io.BytesIO(row["image"]["bytes"]))
    image.load()
    return image


def sha16(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def png_claiming_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims another size: what a decompression bomb looks like before decoding."""
    data = bytearray(encode(Image.new("L", (8, 8)), "PNG"))
    start = data.index(b"IHDR")
    data[start + 4 : start + 12] = struct.pack(">II", width, height)
    data[start + 17 : start + 21] = struct.pack(">I", zlib.crc32(bytes(data[start : start + 17])))
    return bytes(data)


# ---------------------------------------------------------------------------------------------------- bad files


def text_as_jpeg(path):
    write(path, b"not an image at all, just text\n")


def truncated(fmt):
    def make(path):
        data = encode(noise(), fmt)
        write(path, data[: len(data) // 2])

    return make


def dangling_symlink(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(path.parent / "gone.png")


def folder_named_like_an_image(path):
    # Listed from a manifest (a folder source walks into folders instead).
    path.mkdir(parents=True)


@pytest.mark.parametrize(
    "name, make, reason",
    [
        ("empty.png", lambda p: write(p, b""), "empty_file"),
        ("text.jpg", text_as_jpeg, "not_an_image"),
        ("cut.jpg", truncated("JPEG"), "truncated_image"),
        ("cut.png", truncated("PNG"), "truncated_image"),
        ("bomb.png", lambda p: write(p, png_claiming_size(30000, 30000)), "decompression_bomb"),
        ("dangling.png", dangling_symlink, "unreadable_file"),
    ],
)
def test_a_bad_file_becomes_a_drop_with_its_reason(tmp_path, name, make, reason):
    make(tmp_path / "images" / name)
    write(tmp_path / "images" / "good.png", png())
    _, out = read(*folder(tmp_path))
    result = by_path(out)
    assert set(result) == {name, "good.png"}
    assert isinstance(result[name], Drop) and result[name].reason == reason and result[name].detail
    assert result[name].row["row_id"] == name
    assert not isinstance(result["good.png"], Drop)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # set, it would let truncated files through as rows


def test_a_named_pipe_is_unreadable_instead_of_blocking_the_build(tmp_path):
    (tmp_path / "images").mkdir()
    os.mkfifo(tmp_path / "images" / "pipe.png")

    def hang(*_):
        raise TimeoutError("load_rows blocked on a named pipe")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(10)
    try:
        _, [drop] = read(*folder(tmp_path))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert drop.reason == "unreadable_file" and drop.detail == "not a regular file"


def test_postscript_is_never_opened(tmp_path):
    # PIL would hand EPS to Ghostscript; here it must not even be identified.
    write(tmp_path / "images" / "page.jpg", encode(Image.new("RGB", (8, 6), RED), "EPS"))
    _, [drop] = read(*folder(tmp_path))
    assert drop.reason == "not_an_image" and "cannot identify" in drop.detail


def test_images_above_pil_warning_limit_are_bombs_too_without_changing_warning_filters(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 40x40 = 1600: above the limit, below twice the limit
    write(tmp_path / "images" / "big.png", png(size=(40, 40)))
    write(tmp_path / "images" / "small.png", png(size=(20, 20), color=BLUE))
    filters = list(warnings.filters)
    _, out = read(*folder(tmp_path))
    assert [o.reason if isinstance(o, Drop) else "row" for o in out] == ["decompression_bomb", "row"]
    assert warnings.filters == filters


def test_a_folder_named_in_a_manifest_is_unreadable(tmp_path):
    folder_named_like_an_image(tmp_path / "photo.jpg")
    write(tmp_path / "list.jsonl", json.dumps({"image": "photo.jpg"}).encode())
    _, out = read(ManifestSource(type="manifest", path="list.jsonl"), tmp_path)
    assert out[0].reason == "unreadable_file" and "folder" in out[0].detail


def test_a_file_without_read_permission_is_unreadable(tmp_path):
    path = write(tmp_path / "images" / "secret.png", png())
    path.chmod(0)
    _, out = read(*folder(tmp_path))
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their permissions")
    assert out[0].reason == "unreadable_file" and "denied" in out[0].detail


def test_a_sub_folder_that_cannot_be_listed_is_reported_not_skipped(tmp_path):
    write(tmp_path / "images" / "locked" / "a.png", png())
    write(tmp_path / "images" / "b.png", png(BLUE))
    (tmp_path / "images" / "locked").chmod(0)
    try:
        items, out = read(*folder(tmp_path))
    finally:
        (tmp_path / "images" / "locked").chmod(0o755)
    if os.geteuid() == 0:
        pytest.skip("root lists folders whatever their permissions")
    assert [i.key for i in items] == ["b.png", "locked/"]
    assert out[1].reason == "unreadable_file"


# ---------------------------------------------------------------------------------------------------- conversions


def palette_with_transparency() -> Image.Image:
    image = Image.new("P", (8, 6), 1)
    image.putpalette([0, 0, 0, *RED])
    image.putpixel((0, 0), 0)
    image.info["transparency"] = 0
    return image


def animated(fmt: str, **options) -> bytes:
    frames = [Image.new("RGB", (8, 6), RED), Image.new("RGB", (8, 6), BLUE)]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], **options)


@pytest.mark.parametrize(
    "name, data, pixel, expected",
    [
        (
            "cmyk.jpg",
            lambda: encode(Image.new("CMYK", (8, 6), (0, 255, 255, 0)), "JPEG", quality=95),
            (3, 3),
            (255, 0, 0),
        ),
        ("gray16.png", lambda: encode(Image.fromarray(np.full((6, 8), 32768, np.uint16)), "PNG"), (3, 3), (128,) * 3),
        ("palette.png", lambda: encode(palette_with_transparency(), "PNG"), (0, 0), WHITE),
        ("palette-opaque.png", lambda: encode(palette_with_transparency(), "PNG"), (3, 3), RED),
        ("rgba.png", lambda: encode(Image.new("RGBA", (8, 6), (0, 0, 0, 0)), "PNG"), (3, 3), WHITE),
        ("la.png", lambda: encode(Image.new("LA", (8, 6), (0, 128)), "PNG"), (3, 3), (127,) * 3),
        ("anim.gif", lambda: animated("GIF"), (3, 3), RED),
        ("anim.webp", lambda: animated("WEBP", lossless=True), (3, 3), RED),
        ("plain.bmp", lambda: encode(Image.new("RGB", (8, 6), RED), "BMP"), (3, 3), RED),
    ],
)
def test_unusual_images_are_converted_to_rgb_png(tmp_path, name, data, pixel, expected):
    write(tmp_path / "images" / name, data())
    _, [row] = read(*folder(tmp_path))
    image = decoded(row)
    assert image.format == "PNG" and image.mode == "RGB" and image.size == (8, 6)
    assert image.getpixel(pixel) == pytest.approx(expected, abs=3)
    assert row["image"]["path"] == name.rsplit(".", 1)[0] + ".png"


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    ramp = np.linspace(0, 65535, 64).astype(np.uint16).reshape(8, 8)
    write(tmp_path / "images" / "ramp.png", encode(Image.fromarray(ramp), "PNG"))
    _, [row] = read(*folder(tmp_path))
    gray = np.asarray(decoded(row))[..., 0]
    assert gray.min() == 0 and gray.max() == 255 and len(np.unique(gray)) > 50


def test_exif_rotated_jpeg_is_stored_upright(tmp_path):
    stored = Image.new("RGB", (40, 20), BLUE)
    stored.paste(RED, (0, 0, 10, 10))  # top-left corner as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise: the stored top-left lands top-right
    write(tmp_path / "images" / "phone.jpg", encode(stored, "JPEG", exif=exif.tobytes(), quality=95))
    _, [row] = read(*folder(tmp_path))
    upright = decoded(row)
    assert upright.format == "PNG" and upright.size == (20, 40)
    assert upright.getpixel((15, 5)) == pytest.approx(RED, abs=30)
    assert upright.getpixel((5, 5)) == pytest.approx(BLUE, abs=30)


def test_images_above_the_pixel_budget_are_shrunk(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "MAX_PIXELS", 5_000)
    write(tmp_path / "images" / "wide.jpg", encode(Image.new("RGB", (200, 100), RED), "JPEG"))
    _, [row] = read(*folder(tmp_path))
    image = decoded(row)
    assert image.format == "PNG" and image.width * image.height <= 5_000
    assert image.width / image.height == pytest.approx(2, rel=0.05)


@pytest.mark.parametrize(
    "name, fmt, options",
    [
        ("photo.jpg", "JPEG", {}),
        ("shot.png", "PNG", {"compress_level": 0}),  # not what a re-encoding would write
        ("pic.webp", "WEBP", {}),
    ],
)
def test_rgb_images_needing_no_change_keep_their_original_bytes(tmp_path, name, fmt, options):
    data = encode(noise(), fmt, **options)
    write(tmp_path / "images" / name, data)
    _, [row] = read(*folder(tmp_path))
    assert row["image"] == {"bytes": data, "path": name}


def test_a_jpeg_with_extra_pictures_keeps_its_bytes(tmp_path):
    data = encode(Image.new("RGB", (8, 6), RED), "MPO", save_all=True, append_images=[Image.new("RGB", (8, 6))])
    write(tmp_path / "images" / "phone.jpg", data)
    _, [row] = read(*folder(tmp_path))
    assert row["image"]["bytes"] == data and decoded(row).getpixel((3, 3)) == pytest.approx(RED, abs=5)


# ---------------------------------------------------------------------------------------------------- ids, order


def test_rows_carry_content_ids_that_survive_a_rename(tmp_path):
    data = png()
    write(tmp_path / "images" / "a.png", data)
    _, [before] = read(*folder(tmp_path))
    (tmp_path / "images" / "a.png").rename(tmp_path / "images" / "renamed.png")
    _, [after] = read(*folder(tmp_path))
    assert before["image_id"] == before["row_id"] == after["image_id"] == sha16(data)
    assert (before["image_path"], after["image_path"]) == ("a.png", "renamed.png")


def test_the_same_content_twice_keeps_the_first_file(tmp_path):
    write(tmp_path / "images" / "b.png", png())
    write(tmp_path / "images" / "a.png", png())
    write(tmp_path / "images" / "c.png", png(BLUE))
    _, out = read(*folder(tmp_path))
    assert [o.reason if isinstance(o, Drop) else o["image_path"] for o in out] == ["a.png", "duplicate_image", "c.png"]
    assert "a.png" in out[1].detail


def test_listing_is_sorted_skips_hidden_and_other_files_and_follows_symlinks(tmp_path):
    names = ["b/2.PNG", "a.jpg", "b/1.png", "c.webp", "z/deep/x.jpeg", ".hidden.png", ".cache/y.png", "notes.txt"]
    random.Random(3).shuffle(names)
    for i, name in enumerate(names):
        write(tmp_path / "images" / name, png((i, i, i)))
    (tmp_path / "images" / "link.png").symlink_to(tmp_path / "images" / "a.jpg")
    (tmp_path / "images" / "b" / "loop").symlink_to(tmp_path / "images" / "b")  # must not recurse forever
    items = list_items(folder(tmp_path)[0], Limits(), 0, tmp_path)
    assert [i.key for i in items] == ["a.jpg", "b/1.png", "b/2.PNG", "c.webp", "link.png", "z/deep/x.jpeg"]
    assert [i.index for i in items] == list(range(6))
    flat = list_items(ImageFolderSource(type="image_folder", path="images", recursive=False), Limits(), 0, tmp_path)
    assert [i.key for i in flat] == ["a.jpg", "c.webp", "link.png"]


def test_fingerprints_change_when_a_file_changes(tmp_path):
    path = write(tmp_path / "images" / "a.png", png())
    source, base = folder(tmp_path)
    [before] = list_items(source, Limits(), 0, base)
    write(path, png(BLUE, size=(9, 9)))
    [after] = list_items(source, Limits(), 0, base)
    assert before.key == after.key and before.fingerprint != after.fingerprint


def test_file_names_that_are_not_utf8_are_shown_readably(tmp_path):
    (tmp_path / "images").mkdir()
    with open(os.path.join(os.fsencode(tmp_path / "images"), b"caf\xe9.png"), "wb") as f:
        f.write(png())
    _, [row] = read(*folder(tmp_path))
    assert row["image_path"] == "caf\ufffd.png"
    row["image_path"].encode("utf-8")  # storable


def test_first_sampling_keeps_the_head_of_the_listing(tmp_path):
    for i in range(10):
        write(tmp_path / "images" / f"{i}.png", png((i, 0, 0)))
    items = list_items(folder(tmp_path)[0], Limits(max_images=3), 0, tmp_path)
    assert [(i.index, i.key) for i in items] == [(0, "0.png"), (1, "1.png"), (2, "2.png")]


def test_random_sampling_is_seeded_and_returned_in_listing_order(tmp_path):
    for i in range(30):
        write(tmp_path / "images" / f"{i:02d}.png", png((i, 0, 0)))
    limits = Limits(max_images=5, sampling="random")
    sample = [list_items(folder(tmp_path)[0], limits, seed, tmp_path) for seed in (1, 1, 2)]
    assert sample[0] == sample[1] and sample[0] != sample[2]
    assert [i.index for i in sample[0]] == sorted(i.index for i in sample[0]) != list(range(5))
    assert all(i.key == f"{i.index:02d}.png" for i in sample[0])


def test_a_missing_folder_is_an_error(tmp_path):
    with pytest.raises(PrefgenError, match="does not exist"):
        list_items(ImageFolderSource(type="image_folder", path="nope"), Limits(), 0, tmp_path)


# ---------------------------------------------------------------------------------------------------- manifests


def jsonl_manifest(tmp_path) -> ManifestSource:
    write(tmp_path / "data" / "imgs" / "a.png", png(RED))
    write(tmp_path / "data" / "imgs" / "b.png", png(BLUE))
    write(tmp_path / "data" / "imgs" / "c.png", png(WHITE))
    lines = [
        json.dumps({"file": "imgs/a.png", "q": "What colour?", "answer": "red", "meta": {"k": [1, 2]}}),
        "",
        "{not json",
        json.dumps({"file": "imgs/missing.png", "q": "Where?", "answer": "nowhere"}),
        json.dumps({"file": "imgs/b.png", "q": "  ", "answer": "blue"}),
        json.dumps({"file": None, "q": "Which?", "answer": "none"}),
        json.dumps({"file": str(tmp_path / "data" / "imgs" / "c.png"), "q": "Absolute?"}),
    ]
    write(tmp_path / "data" / "list.jsonl", b"\xef\xbb\xbf" + "\n".join(lines).encode())  # with a BOM
    return ManifestSource(
        type="manifest",
        path="data/list.jsonl",
        image_column="file",
        question_column="q",
        extra_columns=["answer", "meta"],
    )


def test_a_jsonl_manifest_gives_rows_with_questions_and_extra_columns(tmp_path):
    items, out = read(jsonl_manifest(tmp_path), tmp_path)
    assert [i.key for i in items] == [
        "1:imgs/a.png",
        "3:",
        "4:imgs/missing.png",
        "5:imgs/b.png",
        "6:",
        f"7:{tmp_path}/data/imgs/c.png",
    ]
    first, last = out[0], out[-1]
    assert first["image_id"] == sha16(png(RED)) and first["image_path"] == "imgs/a.png"
    assert (first["question"], first["answer"], first["meta"]) == ("What colour?", "red", {"k": [1, 2]})
    assert decoded(first).getpixel((0, 0)) == RED
    assert (last["question"], last["answer"]) == ("Absolute?", None)  # absent in this row: null, like parquet


def test_bad_manifest_rows_become_drops(tmp_path):
    _, out = read(jsonl_manifest(tmp_path), tmp_path)
    drops = [(o.reason, o.row["row_id"]) for o in out if isinstance(o, Drop)]
    assert drops == [
        ("bad_manifest_line", "3:"),
        ("unreadable_file", "4:imgs/missing.png"),
        ("missing_question", "5:imgs/b.png"),
        ("missing_image", "6:"),
    ]
    assert "line 3" in out[1].detail


def test_a_manifest_naming_an_absent_column_is_a_recipe_error(tmp_path):
    jsonl_manifest(tmp_path)
    source = ManifestSource(type="manifest", path="data/list.jsonl", image_column="file", extra_columns=["score"])
    with pytest.raises(PrefgenError, match="'score'"):
        list_items(source, Limits(), 0, tmp_path)


@pytest.mark.parametrize("name, content", [("none.jsonl", None), ("text.parquet", b"not parquet")])
def test_a_missing_or_unreadable_manifest_is_an_error(tmp_path, name, content):
    if content is not None:
        write(tmp_path / name, content)
    with pytest.raises(PrefgenError, match=f"cannot read manifest .*{name}"):
        list_items(ManifestSource(type="manifest", path=name), Limits(), 0, tmp_path)


def test_a_manifest_changed_after_listing_stops_the_build(tmp_path):
    source = jsonl_manifest(tmp_path)
    items = list_items(source, Limits(), 0, tmp_path)
    manifest = tmp_path / "data" / "list.jsonl"
    manifest.write_text(manifest.read_text(encoding="utf-8-sig").replace("imgs/a.png", "imgs/b.png"))
    with pytest.raises(PrefgenError, match="changed during the build"):
        load_rows(source, items, tmp_path)


def test_a_parquet_manifest_is_read_like_jsonl(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    write(tmp_path / "imgs" / "a.png", png(RED))
    write(tmp_path / "imgs" / "b.png", png(BLUE))
    table = pa.table({"image": ["imgs/b.png", "imgs/a.png"], "question": ["Blue?", "Red?"], "score": [0.5, 1.5]})
    pq.write_table(table, tmp_path / "list.parquet")
    source = ManifestSource(type="manifest", path="list.parquet", question_column="question", extra_columns=["score"])
    items, out = read(source, tmp_path)
    assert [i.key for i in items] == ["0:imgs/b.png", "1:imgs/a.png"]
    assert [(r["image_id"], r["question"], r["score"]) for r in out] == [
        (sha16(png(BLUE)), "Blue?", 0.5),
        (sha16(png(RED)), "Red?", 1.5),
    ]


def test_editing_a_manifest_row_changes_its_fingerprint(tmp_path):
    source = jsonl_manifest(tmp_path)
    before = list_items(source, Limits(), 0, tmp_path)
    manifest = tmp_path / "data" / "list.jsonl"
    manifest.write_text(manifest.read_text().replace("What colour?", "Which colour?"))
    after = list_items(source, Limits(), 0, tmp_path)
    assert before[0].fingerprint != after[0].fingerprint and before[1:] == after[1:]


# ---------------------------------------------------------------------------------------------------- HF datasets


def parquet_dataset(folder, n=3):
    import datasets

    features = datasets.Features(
        {"img": datasets.Image(), "prompt": datasets.Value("string"), "label": datasets.Value("int64")}
    )
    rows = {
        "img": [{"bytes": png((i * 50, 0, 0)), "path": f"p{i}.png"} for i in range(n)],
        "prompt": [f"Question {i}?" for i in range(n)],
        "label": list(range(n)),
    }
    rows["prompt"][1] = None
    (folder / "data").mkdir(parents=True)
    datasets.Dataset.from_dict(rows, features=features).to_parquet(str(folder / "data" / "train-0.parquet"))


def test_a_local_hf_dataset_gives_rows(tmp_path):
    parquet_dataset(tmp_path / "ds")
    source = HFDatasetSource(
        type="hf_dataset", path="ds", image_column="img", question_column="prompt", extra_columns=["label"]
    )
    items, out = read(source, tmp_path)
    assert [i.key for i in items] == ["0", "1", "2"]
    assert len({i.fingerprint.rsplit(":", 1)[0] for i in items}) == 1  # one dataset fingerprint, then the row
    assert isinstance(out[1], Drop) and out[1].reason == "missing_question"
    assert [(r["question"], r["label"], r["image_path"]) for r in (out[0], out[2])] == [
        ("Question 0?", 0, "0"),
        ("Question 2?", 2, "2"),
    ]
    assert out[2]["image_id"] == sha16(png((100, 0, 0))) and out[2]["image"]["path"] == "p2.png"


def test_hf_dataset_images_stored_as_paths_are_read_from_the_dataset_folder(tmp_path):
    import datasets

    write(tmp_path / "ds" / "pics" / "x.png", png(BLUE))
    (tmp_path / "ds" / "data").mkdir()
    datasets.Dataset.from_dict({"image": ["pics/x.png", "pics/gone.png", None]}).to_parquet(
        str(tmp_path / "ds" / "data" / "train.parquet")
    )
    _, out = read(HFDatasetSource(type="hf_dataset", path="ds"), tmp_path)
    assert out[0]["image_id"] == sha16(png(BLUE)) and out[0]["image"]["path"] == "x.png"
    assert [(d.reason, d.row["row_id"]) for d in out[1:]] == [("unreadable_file", "1"), ("missing_image", "2")]


def test_an_hf_dataset_can_be_a_single_data_file(tmp_path):
    parquet_dataset(tmp_path / "ds")
    source = HFDatasetSource(type="hf_dataset", path="ds/data/train-0.parquet", image_column="img")
    _, out = read(source, tmp_path)
    assert [r["image_id"] for r in out] == [sha16(png((i * 50, 0, 0))) for i in range(3)]


def test_an_hf_dataset_naming_an_absent_column_is_a_recipe_error(tmp_path):
    parquet_dataset(tmp_path / "ds")
    with pytest.raises(PrefgenError, match="'answer'"):
        list_items(
            HFDatasetSource(type="hf_dataset", path="ds", image_column="img", extra_columns=["answer"]),
            Limits(),
            0,
            tmp_path,
        )


def test_a_hub_dataset_not_downloaded_says_how_to_download_it(tmp_path):
    source = HFDatasetSource(type="hf_dataset", id="someone/not-here", revision="v1")
    with pytest.raises(PrefgenError, match="hf download someone/not-here --repo-type dataset --revision v1") as err:
        list_items(source, Limits(), 0, tmp_path)
    assert "\n" not in str(err.value)


def test_a_downloaded_hub_dataset_is_read_offline_at_its_pinned_revision(tmp_path, monkeypatch):
    from huggingface_hub import constants

    sha = "a" * 40
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    parquet_dataset(tmp_path / "hub" / "datasets--someone--pets" / "snapshots" / sha, n=2)
    source = HFDatasetSource(type="hf_dataset", id="someone/pets", revision=sha, image_column="img")
    items, out = read(source, tmp_path)
    assert [r["image_id"] for r in out] == [sha16(png((0, 0, 0))), sha16(png((50, 0, 0)))]
    with pytest.raises(PrefgenError, match="hf download"):
        list_items(source.model_copy(update={"revision": "b" * 40}), Limits(), 0, tmp_path)


def test_load_rows_reads_only_the_items_it_is_given(tmp_path):
    for i in range(4):
        write(tmp_path / "images" / f"{i}.png", png((i, 0, 0)))
    source, base = folder(tmp_path)
    items = list_items(source, Limits(), 0, base)
    out = load_rows(source, items[2:], base)
    assert [r["image_path"] for r in out] == ["2.png", "3.png"]
    assert load_rows(source, [], base) == [] and isinstance(items[0], SourceItem)
