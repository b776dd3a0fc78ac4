"""Issue 28 (smaller items): `prefgen stages X` shows default prompts in full and an example that is a complete,
valid stage entry (every param at its default)."""

import pytest
import yaml

from prefgen.recipe.catalogue import STAGES
from prefgen.stages.describe import describe_stage


def example_of(text: str) -> dict:
    return yaml.safe_load(text.split("required ones to fill in):\n", 1)[1])[0]


@pytest.mark.parametrize("name", sorted(STAGES))
def test_the_example_is_a_valid_entry_with_every_default(name):
    cls = STAGES[name]
    entry = example_of(describe_stage(cls))
    required = [k for k, v in entry.items() if isinstance(v, str) and v == f"<{k}>"]
    assert required == [k for k, f in cls.model_fields.items() if f.is_required() and k != "type"]
    filled = {k: {"a_clip": 1.0} if k == "terms" else "some_column" for k in required}  # reward_mix's terms: a dict
    params = cls.model_validate({**entry, **filled})
    defaults = {k: f.get_default(call_default_factory=True) for k, f in cls.model_fields.items() if k not in required}
    assert {k: getattr(params, k) for k in defaults} == defaults


def test_a_default_prompt_is_shown_whole():
    text = describe_stage(STAGES["caption"])
    prompt = STAGES["caption"].model_fields["prompt"].default
    assert "\n" in prompt and "..." not in text
    assert example_of(text)["prompt"] == prompt
