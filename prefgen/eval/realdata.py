"""The same benchmarks on real data: POPE from its jsonl question files, CHAIR against COCO instance annotations.

- POPE files hold one question per line: ``{"question_id", "image", "text", "label"}`` with label "yes"/"no";
  images are looked up in a folder by file name.
- CHAIR reads a COCO ``instances_*.json`` (images, annotations, categories) for the ground-truth objects of each
  image and finds object words in captions with the synonym table below. The table is ours (written for prefgen,
  not copied from the CHAIR code): a handful of common words per COCO category; plurals are derived. Multi-word
  names are matched first, so "hot dog" is never a dog and "teddy bear" never a bear. As in the original CHAIR,
  a colour word such as "orange" can be misread as the fruit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from prefgen.core.errors import PrefgenError
from prefgen.shapes.metrics import Answer, Describe, pope_metrics

COCO_SYNONYMS: dict[str, tuple[str, ...]] = {
    "person": (
        "person",
        "people",
        "man",
        "men",
        "woman",
        "women",
        "boy",
        "girl",
        "child",
        "children",
        "kid",
        "guy",
        "lady",
        "baby",
        "player",
        "skier",
        "surfer",
        "skateboarder",
        "rider",
        "pedestrian",
        "adult",
    ),
    "bicycle": ("bicycle", "bike", "cycle"),
    "car": ("car", "taxi", "sedan", "automobile", "suv"),
    "motorcycle": ("motorcycle", "motorbike", "scooter", "moped"),
    "airplane": ("airplane", "aeroplane", "plane", "jet", "aircraft", "airliner"),
    "bus": ("bus", "buses"),
    "train": ("train", "locomotive", "tram"),
    "truck": ("truck", "pickup truck", "lorry"),
    "boat": ("boat", "ship", "canoe", "kayak", "sailboat", "yacht", "ferry"),
    "traffic light": ("traffic light", "traffic signal", "stoplight", "stop light"),
    "fire hydrant": ("fire hydrant", "hydrant"),
    "stop sign": ("stop sign",),
    "parking meter": ("parking meter",),
    "bench": ("bench", "benches"),
    "bird": ("bird", "pigeon", "seagull", "gull", "duck", "parrot", "sparrow"),
    "cat": ("cat", "kitten", "kitty"),
    "dog": ("dog", "puppy", "pup"),
    "horse": ("horse", "pony", "foal"),
    "sheep": ("sheep", "lamb"),
    "cow": ("cow", "cattle", "bull", "calf", "ox"),
    "elephant": ("elephant",),
    "bear": ("bear", "grizzly", "polar bear"),
    "zebra": ("zebra",),
    "giraffe": ("giraffe",),
    "backpack": ("backpack", "rucksack"),
    "umbrella": ("umbrella", "parasol"),
    "handbag": ("handbag", "purse"),
    "tie": ("tie", "necktie"),
    "suitcase": ("suitcase", "luggage"),
    "frisbee": ("frisbee",),
    "skis": ("skis", "ski"),
    "snowboard": ("snowboard",),
    "sports ball": ("ball", "soccer ball", "tennis ball", "football", "basketball", "volleyball"),
    "kite": ("kite",),
    "baseball bat": ("baseball bat", "bat"),
    "baseball glove": ("baseball glove", "glove", "mitt"),
    "skateboard": ("skateboard",),
    "surfboard": ("surfboard", "surf board"),
    "tennis racket": ("tennis racket", "racket", "racquet"),
    "bottle": ("bottle",),
    "wine glass": ("wine glass", "wineglass"),
    "cup": ("cup", "mug"),
    "fork": ("fork",),
    "knife": ("knife", "knives"),
    "spoon": ("spoon",),
    "bowl": ("bowl",),
    "banana": ("banana",),
    "apple": ("apple",),
    "sandwich": ("sandwich", "burger", "hamburger"),
    "orange": ("orange",),
    "broccoli": ("broccoli",),
    "carrot": ("carrot",),
    "hot dog": ("hot dog", "hotdog"),
    "pizza": ("pizza",),
    "donut": ("donut", "doughnut"),
    "cake": ("cake", "cupcake"),
    "chair": ("chair", "stool"),
    "couch": ("couch", "sofa"),
    "potted plant": ("potted plant", "houseplant", "house plant", "plant"),
    "bed": ("bed",),
    "dining table": ("dining table", "table"),
    "toilet": ("toilet",),
    "tv": ("tv", "television", "tv screen"),
    "laptop": ("laptop",),
    "mouse": ("mouse", "mice", "computer mouse"),
    "remote": ("remote", "remote control"),
    "keyboard": ("keyboard",),
    "cell phone": ("cell phone", "cellphone", "phone", "smartphone", "mobile phone"),
    "microwave": ("microwave",),
    "oven": ("oven", "stove"),
    "toaster": ("toaster",),
    "sink": ("sink",),
    "refrigerator": ("refrigerator", "fridge"),
    "book": ("book",),
    "clock": ("clock",),
    "vase": ("vase",),
    "scissors": ("scissors",),
    "teddy bear": ("teddy bear", "teddy", "stuffed animal"),
    "hair drier": ("hair drier", "hair dryer", "blow dryer"),
    "toothbrush": ("toothbrush", "toothbrushes"),
}


def _plurals(word: str) -> set[str]:
    *head, last = word.split(" ")
    forms = {last, last + "s", last + "es"}
    if last.endswith("y"):
        forms.add(last[:-1] + "ies")
    return {" ".join([*head, form]) for form in forms}


SYNONYM_TO_CATEGORY = {
    form: category for category, words in COCO_SYNONYMS.items() for word in words for form in _plurals(word)
}
_LONGEST = max(len(key.split()) for key in SYNONYM_TO_CATEGORY)


def coco_mentions(text: str) -> set[str]:
    """COCO categories named in ``text`` (longest synonym first, so "hot dog" wins over "dog")."""
    import re

    words = re.findall(r"[a-z]+", text.lower())
    found, i = set(), 0
    while i < len(words):
        for size in range(min(_LONGEST, len(words) - i), 0, -1):
            category = SYNONYM_TO_CATEGORY.get(" ".join(words[i : i + size]))
            if category:
                found.add(category)
                i += size
                break
        else:
            i += 1
    return found


def read_coco_objects(annotations: str | Path) -> dict[str, set[str]]:
    """Image file name -> COCO category names present, from an instances JSON."""
    try:
        data = json.loads(Path(annotations).read_text(encoding="utf-8"))
        names = {c["id"]: c["name"] for c in data["categories"]}
        files = {image["id"]: image["file_name"] for image in data["images"]}
        objects: dict[str, set[str]] = {name: set() for name in files.values()}
        for annotation in data["annotations"]:
            objects[files[annotation["image_id"]]].add(names[annotation["category_id"]])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PrefgenError(f"cannot read COCO annotations {annotations}: {exc}") from exc
    return objects


def chair_coco(captions: dict[str, str], objects: dict[str, set[str]]) -> dict:
    """CHAIR_s, CHAIR_i (distinct categories per caption) and recall of captions keyed by image file name."""
    bad = mentions = hallucinated = hits = truth = 0
    for name, text in captions.items():
        said, there = coco_mentions(text), objects[name]
        bad += bool(said - there)
        mentions += len(said)
        hallucinated += len(said - there)
        hits += len(said & there)
        truth += len(there)
    n = len(captions)
    return {
        "captions": n,
        "chair_s": bad / n if n else 0.0,
        "chair_i": hallucinated / mentions if mentions else 0.0,
        "recall": hits / truth if truth else 0.0,
        "mean_mentions": mentions / n if n else 0.0,
    }


def evaluate_coco_chair(
    describe: Describe, annotations: str | Path, images_dir: str | Path, limit: int | None = None, batch_size: int = 16
) -> tuple[dict, dict[str, str]]:
    """Caption the annotated images found in ``images_dir`` (sorted, the first ``limit``) and score them."""
    objects = read_coco_objects(annotations)
    names = sorted(name for name in objects if (Path(images_dir) / name).is_file())[:limit]
    if not names:
        raise PrefgenError(f"none of the annotated images is in {images_dir}")
    captions: dict[str, str] = {}
    for start in range(0, len(names), batch_size):
        chunk = names[start : start + batch_size]
        captions.update(zip(chunk, describe([_open(Path(images_dir) / name) for name in chunk])))
    return chair_coco(captions, objects), captions


def read_pope(path: str | Path) -> list[dict]:
    """Questions of a POPE jsonl file, checked for the fields and labels the benchmark needs."""
    questions = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            label = str(record["label"]).strip().lower()
            if label not in ("yes", "no"):
                raise ValueError(f"label must be yes or no, not {record['label']!r}")
            questions.append(
                {
                    "question_id": record.get("question_id", number),
                    "image": record["image"],
                    "text": record["text"],
                    "label": label == "yes",
                }
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise PrefgenError(f"{path}:{number}: not a POPE question ({exc})") from exc
    return questions


def evaluate_pope_file(
    answer: Answer,
    questions: str | Path | Sequence[dict],
    images_dir: str | Path,
    limit: int | None = None,
    batch_size: int = 32,
) -> tuple[dict, list[str]]:
    """POPE metrics of ``answer`` on a question file (or already read questions), and the answers given."""
    items = read_pope(questions) if isinstance(questions, (str, Path)) else list(questions)
    items = items[:limit]
    answers: list[str] = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        answers += answer([_open(Path(images_dir) / q["image"]) for q in chunk], [q["text"] for q in chunk])
    return pope_metrics([q["label"] for q in items], answers), answers


def _open(path: Path):
    from PIL import Image

    if not path.is_file():
        raise PrefgenError(f"image {path} does not exist")
    with Image.open(path) as image:
        return image.convert("RGB")
