"""The one grammar of dataset references: STORE[@VERSION] and hf://REPO[@TAG], with '@' inside folder names."""

import pytest

from prefgen.core.errors import PrefgenError
from prefgen.core.refs import DataRef, split_hub_ref, split_store_ref


def test_a_store_without_a_version_is_the_latest():
    assert split_store_ref("out/store") == ("out/store", None)


def test_the_version_is_what_follows_the_last_at():
    assert split_store_ref("runs/exp@2/store@v3") == ("runs/exp@2/store", "v3")


def test_an_at_inside_a_folder_name_is_not_a_version():
    assert split_store_ref("runs/exp@2/store") == ("runs/exp@2/store", None)


def test_a_path_that_exists_as_written_is_never_split(tmp_path):
    folder = tmp_path / "store@v1"
    folder.mkdir()
    assert split_store_ref(str(folder)) == (str(folder), None)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty dataset reference"),
        ("@v1", "the store folder is missing before '@'"),
        ("out/store@", "no version after '@'"),
    ],
)
def test_a_malformed_store_reference_is_one_line(text, message):
    with pytest.raises(PrefgenError, match=message):
        split_store_ref(text)


def test_hub_references_split_at_the_tag():
    assert split_hub_ref("user/prefs@v2") == ("user/prefs", "v2")
    assert split_hub_ref("user/prefs") == ("user/prefs", None)
    assert split_hub_ref("user/prefs@refs/pr/1") == ("user/prefs", "refs/pr/1")


@pytest.mark.parametrize(
    "text, message",
    [
        ("user/prefs@", "use USER/REPO or USER/REPO@TAG"),
        ("a/b/c@v1", "a repo id is NAME or USER/NAME"),
        ("us@er/prefs@v1", "a repo id is NAME or USER/NAME"),
        ("user/prefs@v 1", "'v 1' is not a tag or revision"),
    ],
)
def test_a_malformed_hub_reference_is_one_line(text, message):
    with pytest.raises(PrefgenError, match=message):
        split_hub_ref(text)


def test_data_refs_know_local_from_hub_and_print_as_given():
    local = DataRef.parse("runs/exp@2/store@r1")
    assert (local.location, local.version, local.hub) == ("runs/exp@2/store", "r1", False)
    hub = DataRef.parse("hf://user/prefs@v3")
    assert (hub.location, hub.version, hub.hub) == ("user/prefs", "v3", True)
    assert str(hub) == "hf://user/prefs@v3" and str(local) == "runs/exp@2/store@r1"
