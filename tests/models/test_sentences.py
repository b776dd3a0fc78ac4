"""Sentence ends found on decoded text, for any tokenizer."""

import pytest

from prefgen.models.sentences import SentenceEnd, find_sentence_end


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The cat is red. It", SentenceEnd(15, True)),
        ("The cat is red.", SentenceEnd(15, False)),  # the next token decides
        ("Wow! Really? Yes.", SentenceEnd(4, True)),
        ("Is it? No", SentenceEnd(6, True)),
        (" The sky is blue.\nA", SentenceEnd(17, True)),
        ('He said "hi." Then', SentenceEnd(13, True)),  # closing quote belongs to the sentence
        ("It waits...  then", SentenceEnd(11, True)),
        ("猫です。次", SentenceEnd(4, True)),
        ("## Heading\nText", SentenceEnd(11, True)),  # a line break after text
        ("1. The sky\n2. The", SentenceEnd(11, True)),  # a list number is no sentence end
    ],
)
def test_sentence_ends(text, expected):
    assert find_sentence_end(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "It is 3.5 meters",  # decimal
        "It is 3.",  # ...pending, shown separately
        "Dr. Smith and Mr. Jones",  # abbreviations
        "The U.S. flag",  # dotted abbreviation
        "J. K. Rowling wrote",  # initials
        "e.g. a cat",
        "no end here",
        "\nLeading newline only",
        "www.example.com is a site",
    ],
)
def test_no_confirmed_end(text):
    end = find_sentence_end(text)
    assert end is None or not end.confirmed


def test_a_number_then_a_period_at_the_end_is_pending_not_final():
    assert find_sentence_end("It is 3.") == SentenceEnd(8, False)
    assert find_sentence_end("It is 3.5") is None


def test_newline_ends_can_be_turned_off():
    assert find_sentence_end("## Heading\nText", newline_ends=False) is None
