"""The one definition of taking ``<image>`` placeholders out of a text, with how many there were."""

import pytest

from prefgen.core.placeholders import strip_placeholders


@pytest.mark.parametrize(
    "text, expected",
    [
        ("What is in the image?", ("What is in the image?", 0)),
        ("<image>\nWhat is in the image?", ("What is in the image?", 1)),
        ("<image><image>\nCompare them.", ("Compare them.", 2)),
        ("What is <image> this?", ("What is this?", 1)),
        ("Describe it.\n<image>", ("Describe it.", 1)),
        ("<image>", ("", 1)),
        ("<Image> is not the placeholder", ("<Image> is not the placeholder", 0)),
    ],
)
def test_placeholders_are_taken_out_and_counted(text, expected):
    assert strip_placeholders(text) == expected


def test_a_text_without_placeholders_is_returned_as_it_is():
    text = "  two spaces\nand a newline  "
    assert strip_placeholders(text) == (text, 0)
