"""The reference CHAIR's word handling: tokenising, singularising, double words, the toilet-seat rule, synonyms."""

import pytest

from prefgen.eval.singular import singularize
from prefgen.eval.synonyms import COCO_SYNONYMS
from prefgen.eval.words import DOUBLE_WORDS, ObjectWords, tokenize


def test_tokenize_splits_as_nltk_does():
    assert tokenize("a man's dog, two hot-dogs (a cat). no dog! can't see 2,000 people...") == [
        *["a", "man", "'s", "dog", ",", "two", "hot-dogs", "(", "a", "cat", ")", "."],
        *["no", "dog", "!", "ca", "n't", "see", "2,000", "people", "..."],
    ]


@pytest.mark.parametrize(
    ("plural", "singular"),
    [
        ("dogs", "dog"),
        ("glasses", "glass"),
        ("glass", "glas"),  # the final-s rule: why the reference joins "wine glas"
        ("bus", "bu"),
        ("buses", "bus"),
        ("tennis", "tenni"),
        ("knives", "knife"),
        ("women", "woman"),  # irregulars match as suffixes
        ("people", "person"),
        ("children", "child"),
        ("mice", "mouse"),
        ("ties", "ty"),  # "-ies" -> "-y": "bow ties" never becomes "bow tie"
        ("cookies", "cookies"),  # an "-ie" noun: returned as it is
        ("scissors", "scissors"),  # uninflected
        ("ears", "ears"),  # the end of an uninflected word ("shears")
        ("sheep", "sheep"),
        ("shelves", "shelve"),  # "helves" is an irregular suffix
        ("olives", "olife"),
        ("data", "datum"),
        ("mothers-in-law", "mother-in-law"),
    ],
)
def test_singularize_keeps_patterns_quirks(plural, singular):
    assert singularize(plural) == singular


def test_double_words_and_special_rules():
    words = ObjectWords.prefgen()
    assert words.mentions("A hot dog, a teddy bear and a traffic light.") == [
        ("hot dog", "hot dog"),
        ("teddy bear", "teddy bear"),
        ("traffic light", "traffic light"),
    ]
    assert words.mentions("A baby elephant and an adult dog.") == [("elephant", "elephant"), ("dog", "dog")]
    assert words.mentions("A baby.") == [("baby", "person")]
    assert words.mentions("The passenger jet and the passenger train.") == [("jet", "airplane"), ("train", "train")]
    assert words.mentions("A man in a bow tie.") == [("man", "person"), ("tie", "tie")]
    assert words.mentions("A toilet seat.") == [("toilet", "toilet")]
    assert words.mentions("The seat next to the toilet.") == [("toilet", "toilet")]  # seat dropped: toilet is there
    assert words.mentions("A seat.") == [("seat", "chair")]
    assert words.mentions("A train on the train track.") == [("train", "train")]  # "train track" joins to nothing
    assert words.mentions("Two wine glasses.") == [("wine glass", "wine glass")]
    assert words.mentions("A wine glass.") == [("wine glass", "wine glass")]  # via "wine glas"
    assert words.mentions("Dogs, DOGS and a dog.") == [("dog", "dog")] * 3  # every mention counts


def test_reference_quirks_of_a_synonyms_file(tmp_path):
    (tmp_path / "syn.txt").write_text("motorcycle,  motor bike, motorbike\ncell phone, iPhone, phone\n")
    words = ObjectWords.read(tmp_path / "syn.txt")
    assert " motor bike" in words.to_object and "motor bike" not in words.to_object
    assert words.mentions("A motor bike, a motorbike and an iPhone phone.") == [
        ("motorbike", "motorcycle"),
        ("phone", "cell phone"),
    ]


def test_prefgen_table_covers_coco_and_every_entry_can_match():
    assert len(COCO_SYNONYMS) == 80 and all(words[0] == name for name, words in COCO_SYNONYMS.items())
    joined = set(DOUBLE_WORDS.values())
    for category, entries in COCO_SYNONYMS.items():
        for entry in entries:
            assert entry == category or " " not in entry or entry in joined, entry
    words = ObjectWords.prefgen()
    assert all(words.category(name) == name for name in COCO_SYNONYMS)
    assert words.mentions("Two buses, three knives and the skis.") == [
        ("bus", "bus"),
        ("knife", "knife"),
        ("ski", "skis"),
    ]
