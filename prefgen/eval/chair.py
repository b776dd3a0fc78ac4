"""CHAIR as the reference computes it (Rohrbach et al. 2018, LisaAnne/Hallucination ``utils/chair.py``), on
captions a user already has or on captions a VLM writes here.

- Objects in a caption: ``words.ObjectWords.mentions`` (the reference's tokenise -> singularise -> double words ->
  toilet-seat -> synonym steps). Every mention counts, repeats included.
- Ground truth of an image: the objects of its instance annotations (category names through the synonyms) united
  with the objects found, by the same steps, in its human reference captions (``captions_*2014.json``). The
  reference reads both the train and the val files; give both, or the one your images come from.
- CHAIR_i = hallucinated mentions / all mentions, pooled over the captions; CHAIR_s = share of captions with at
  least one hallucinated mention. Recall follows OPERA's ``chair.py`` (the reference has none): per caption the
  distinct ground-truth objects it mentions, summed, over the sum of the ground-truth set sizes.
- Comparable with: the reference run on the same captions, synonyms file and annotation files, up to the
  tokeniser and singulariser (re-implemented here, see ``words.py`` and ``singular.py``). OPERA and lmms-eval
  replace pattern with a WordNet lemmatiser ("glasses" -> "glass" there, "glas" here), so their numbers can differ.
- Differences kept on purpose: an empty caption is counted and skipped (LURE's converter drops them too), a
  caption whose image is in no annotation file is counted and skipped (the reference would score it against an
  empty ground truth), and no mention at all gives CHAIR_i 0 instead of a division by zero.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from prefgen.core.errors import PrefgenError
from prefgen.eval.files import read_ids, read_json, read_records
from prefgen.eval.words import ObjectWords

RECALL = "OPERA's: distinct ground-truth objects mentioned / ground-truth objects, summed over captions"
SINGULARISER = "pattern 3.6 rules, re-implemented (prefgen.eval.singular)"
_LURE_ID = re.compile(r"(\d+)\.\w+$")


@dataclass(frozen=True)
class Caption:
    image_id: int
    caption: str


def read_captions(path: str | Path) -> tuple[list[Caption], Counter]:
    """Captions of a JSON-lines file: ``{"image_id": int, "caption": str}`` a line, or LURE's ``{"id":
    "COCO_val2014_000000157393.jpg", "answer": str}``. Returns the captions and the counted skips (empty ones)."""
    captions, skipped = [], Counter()
    for number, record in read_records(path):
        image_id = _image_id(path, number, record)
        text = record.get("caption", record.get("answer"))
        if not isinstance(text, str):
            raise PrefgenError(f"{path}:{number}: no caption (a string under 'caption', or LURE's 'answer')")
        if not text.strip():
            skipped["empty_caption"] += 1
            continue
        captions.append(Caption(image_id, text))
    return captions, skipped


def _image_id(path, number: int, record: dict) -> int:
    if "image_id" in record:
        value = record["image_id"]
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        raise PrefgenError(f"{path}:{number}: image_id must be an integer, not {value!r}")
    found = _LURE_ID.search(str(record.get("id", "")))
    if found is None:
        raise PrefgenError(f"{path}:{number}: no image_id (nor a LURE id such as COCO_val2014_000000157393.jpg)")
    return int(found.group(1))


@dataclass
class GroundTruth:
    """Objects per image, and the file name of every image the annotation files know."""

    objects: dict[int, set[str]]
    files: dict[int, str]


def read_ground_truth(
    instances: Sequence[str | Path],
    captions: Sequence[str | Path],
    words: ObjectWords,
    wanted: set[int] | None = None,
) -> GroundTruth:
    """The reference's ground truth from COCO ``instances_*.json`` and ``captions_*.json`` files, for the images in
    ``wanted`` (all when None)."""
    objects: dict[int, set[str]] = {}
    files: dict[int, str] = {}
    for path in instances:
        data = _coco(path, ("images", "annotations", "categories"))
        with _entries(path):
            names = {c["id"]: words.category(c["name"]) for c in data["categories"]}
            _add_images(files, objects, data["images"], wanted)
            for annotation in data["annotations"]:
                if annotation["image_id"] in objects:
                    objects[annotation["image_id"]].add(names[annotation["category_id"]])
    for path in captions:
        data = _coco(path, ("images", "annotations"))
        with _entries(path):
            _add_images(files, objects, data["images"], wanted)
            for annotation in data["annotations"]:
                if annotation["image_id"] in objects:
                    objects[annotation["image_id"]].update(obj for _, obj in words.mentions(annotation["caption"]))
    return GroundTruth(objects, files)


def _coco(path, keys: tuple[str, ...]) -> dict:
    data = read_json(path)
    missing = [key for key in keys if not isinstance(data, dict) or key not in data]
    if missing:
        raise PrefgenError(f"{path} is not a COCO annotation file (no {', '.join(repr(k) for k in missing)})")
    return data


@contextmanager
def _entries(path):
    """A COCO file whose entries lack a field they must have fails in one line, naming the file."""
    try:
        yield
    except (KeyError, TypeError, AttributeError) as exc:
        raise PrefgenError(f"{path}: malformed COCO annotations ({type(exc).__name__}: {exc})") from exc


def _add_images(files: dict, objects: dict, images: list, wanted: set[int] | None) -> None:
    for image in images:
        if wanted is None or image["id"] in wanted:
            files[image["id"]] = image.get("file_name", "")
            objects.setdefault(image["id"], set())


def score(captions: Sequence[Caption], truth: GroundTruth, words: ObjectWords, skipped: Counter | None = None) -> dict:
    """CHAIR_s, CHAIR_i and recall (fractions in [0, 1]) and one entry per scored caption; captions of images no
    annotation file knows are counted in ``skipped`` and left out."""
    skipped = Counter(skipped or {})
    sentences, bad, mentioned, hallucinated, recalled, gt_total = [], 0, 0, 0, 0, 0
    for caption in captions:
        gt = truth.objects.get(caption.image_id)
        if gt is None:
            skipped["not_in_annotations"] += 1
            continue
        found = words.mentions(caption.caption)
        wrong = [obj for _, obj in found if obj not in gt]
        bad += bool(wrong)
        mentioned += len(found)
        hallucinated += len(wrong)
        recalled += len({obj for _, obj in found if obj in gt})
        gt_total += len(gt)
        sentences.append(
            {
                "image_id": caption.image_id,
                "caption": caption.caption,
                "words": [word for word, _ in found],
                "mentioned": [obj for _, obj in found],
                "hallucinated": wrong,
                "ground_truth": sorted(gt),
            }
        )
    if not sentences:
        raise PrefgenError(f"no caption left to score (skipped: {_said(skipped)})")
    return {
        "chair_s": bad / len(sentences),
        "chair_i": hallucinated / mentioned if mentioned else 0.0,
        "recall": recalled / gt_total if gt_total else 0.0,
        "n_captions": len(sentences),
        "mentions": mentioned,
        "hallucinated_mentions": hallucinated,
        "synonyms": words.source,
        "singulariser": SINGULARISER,
        "recall_definition": RECALL,
        "skipped": dict(skipped),
        "sentences": sentences,
    }


def _said(counts: Counter) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in counts.items()) or "nothing"


def restrict(captions: list[Caption], ids: Sequence[int], skipped: Counter) -> list[Caption]:
    """Only the captions of ``ids`` (counted: ``not_in_image_ids``; ids without a caption: ``no_caption``)."""
    wanted = set(ids)
    kept = [c for c in captions if c.image_id in wanted]
    skipped["not_in_image_ids"] += len(captions) - len(kept)
    skipped["no_caption"] += len(wanted - {c.image_id for c in kept})
    return kept


def evaluate_captions(
    answers: str | Path,
    instances: Sequence[str | Path],
    captions: Sequence[str | Path] = (),
    synonyms: str | Path | None = None,
    image_ids: str | Path | None = None,
) -> dict:
    """``prefgen eval --bench chair --answers CAPS.jsonl``: CHAIR of captions a user already has."""
    words = ObjectWords.read(synonyms) if synonyms else ObjectWords.prefgen()
    said, skipped = read_captions(answers)
    if image_ids:
        said = restrict(said, read_ids(image_ids), skipped)
    truth = read_ground_truth(instances, captions, words, {c.image_id for c in said})
    return {
        "bench": "chair",
        "answers": str(answers),
        **_sources(instances, captions),
        **score(said, truth, words, skipped),
    }


def _sources(instances, captions) -> dict:
    return {"instances": [str(p) for p in instances], "captions": [str(p) for p in captions]}


Describe = Callable[[list], list[str]]


class ChairImages:
    """The images a VLM describes for CHAIR, with their ground truth read once (a rounds loop scores every round's
    model on the same images): those of ``image_ids``, else every annotated image in ``images``, sorted by id,
    the first ``limit``."""

    def __init__(self, instances, captions, images, image_ids=None, synonyms=None, limit: int | None = None):
        self.words = ObjectWords.read(synonyms) if synonyms else ObjectWords.prefgen()
        self.sources = _sources(instances, captions)
        wanted = set(read_ids(image_ids)) if image_ids else None
        self.truth = read_ground_truth(instances, captions, self.words, wanted)
        self.images, self.skipped = Path(images), Counter()
        ids = sorted(wanted if wanted is not None else self.truth.files)
        self.skipped["not_in_annotations"] = sum(i not in self.truth.files for i in ids)
        found = [i for i in ids if i in self.truth.files and (self.images / self.truth.files[i]).is_file()]
        self.skipped["image_missing"] = sum(i in self.truth.files for i in ids) - len(found)
        self.ids = found[:limit]
        if not self.ids:
            raise PrefgenError(f"none of the annotated images is in {images}")

    def evaluate(self, describe: Describe, batch_size: int = 16) -> dict:
        said: list[Caption] = []
        for start in range(0, len(self.ids), batch_size):
            chunk = self.ids[start : start + batch_size]
            texts = describe([open_image(self.images / self.truth.files[i]) for i in chunk])
            said += [Caption(i, text) for i, text in zip(chunk, texts)]
        skipped = Counter({k: v for k, v in self.skipped.items() if v})
        kept = [c for c in said if c.caption.strip()]
        if len(kept) < len(said):
            skipped["empty_caption"] += len(said) - len(kept)
        return {**self.sources, **score(kept, self.truth, self.words, skipped)}


def sample_image_ids(
    instances: Sequence[str | Path], n: int, seed: int, images: str | Path | None = None
) -> list[int]:
    """``n`` image ids drawn from the annotation files (those with a file in ``images`` when given), the same for
    the same files and seed on any machine (papers drew theirs from a directory listing and kept no list)."""
    ids: set[int] = set()
    for path in instances:
        data = _coco(path, ("images",))
        with _entries(path):
            ids.update(
                image["id"]
                for image in data["images"]
                if images is None or (Path(images) / image.get("file_name", "")).is_file()
            )
    if len(ids) < n:
        raise PrefgenError(f"only {len(ids)} images to draw {n} from")
    return sorted(random.Random(seed).sample(sorted(ids), n))


def open_image(path: Path):
    from PIL import Image

    if not path.is_file():
        raise PrefgenError(f"image {path} does not exist")
    with Image.open(path) as image:
        return image.convert("RGB")
