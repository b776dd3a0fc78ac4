"""The vLLM engine against the transformers engine on the same weights (the shipped shapes VLM, float32): the same
greedy text and tokens, log-probs within 1e-3 per token, seeded samples that do not depend on batching, stop
strings, CSR's sentence steps ended by prefgen's rule, and the refusals. One engine for the whole module (vLLM's
CPU build starts in ~20 s); the tests share one xdist worker so that the session starts it once."""

from pathlib import Path

import pytest

from prefgen.core.errors import PrefgenError
from prefgen.models import Prompt
from prefgen.models.candidates import TextRow
from prefgen.models.sentences import find_sentence_end

SHAPES_VLM = Path(__file__).parents[2] / "prefgen" / "shapes" / "checkpoints" / "shapes-vlm"
TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def engines():
    from prefgen.models import VLM, VllmVLM

    return VLM.load(path=SHAPES_VLM, dtype="float32", device="cpu"), VllmVLM.load(
        path=SHAPES_VLM, dtype="float32", device="cpu"
    )


@pytest.fixture(scope="module")
def scenes():
    from prefgen.shapes.world import make_scenes, render

    return [Prompt("Describe the image.", (render(scene),)) for scene in make_scenes(12, seed=3, split="eval")]


@pytest.mark.slow  # starts the vLLM engine
def test_greedy_answers_are_the_transformers_engine_s_token_for_token(engines, scenes):
    hf, vllm = engines
    expected, found = hf.generate(scenes, max_new_tokens=40), vllm.generate(scenes, max_new_tokens=40)
    for (want,), (got,) in zip(expected, found):
        assert got.token_ids == want.token_ids and got.text == want.text
        assert got.finish_reason == want.finish_reason
        assert max(abs(a - b) for a, b in zip(got.token_logprobs, want.token_logprobs)) < TOLERANCE
    assert all(c.text.startswith("There is") for (c,) in found)  # the shipped VLM describes, not noise


@pytest.mark.slow  # starts the vLLM engine
def test_log_probs_of_given_continuations_match_within_tolerance(engines, scenes):
    hf, vllm = engines
    texts = ["There is a red circle.", "There are two blue squares. There is a cross.", "", "a a a a"]
    rows = [0, 1, 2, 3]
    expected = hf.logprobs(scenes, texts, rows=rows, append_eos=True)
    found = vllm.logprobs(vllm.encode(scenes), texts, rows=rows, append_eos=True)
    for want, got in zip(expected, found):
        assert got.token_ids == want.token_ids
        assert max(abs(a - b) for a, b in zip(got.token_logprobs, want.token_logprobs)) < TOLERANCE
        assert abs(got.logprob_sum - want.logprob_sum) < TOLERANCE * len(want.token_ids)
    assert vllm.logprobs(scenes[:1], [""])[0].token_ids == ()


@pytest.mark.slow  # starts the vLLM engine
def test_seeded_samples_do_not_depend_on_batching_or_order(engines, scenes):
    _, vllm = engines
    seeds = list(range(100, 100 + len(scenes)))
    whole = vllm.generate(scenes, n=3, temperature=1.0, max_new_tokens=30, seed=seeds)
    halves = vllm.generate(scenes[6:], n=3, temperature=1.0, max_new_tokens=30, seed=seeds[6:])
    backwards = vllm.generate(scenes[::-1], n=3, temperature=1.0, max_new_tokens=30, seed=seeds[::-1])[::-1]
    texts = [[c.text for c in row] for row in whole]
    assert texts[6:] == [[c.text for c in row] for row in halves]
    assert texts == [[c.text for c in row] for row in backwards]
    assert len({t for row in texts for t in row}) > len(scenes)  # the samples of a row differ, rows differ
    again = vllm.generate([scenes[0]] * 3, n=3, temperature=1.0, max_new_tokens=30, seed=[7, 7, 8])
    assert [c.text for c in again[0]] == [c.text for c in again[1]] != [c.text for c in again[2]]


@pytest.mark.slow  # starts the vLLM engine
def test_sampled_log_probs_are_the_unprocessed_distribution_s(engines, scenes):
    hf, vllm = engines
    found = vllm.generate(scenes[:4], n=2, temperature=0.7, top_p=0.9, max_new_tokens=30, seed=[1, 2, 3, 4])
    rows = [i for i in range(4) for _ in range(2)]
    scored = hf.logprobs(scenes, [list(c.token_ids) for row in found for c in row], rows=rows)
    for candidate, check in zip([c for row in found for c in row], scored):
        assert max(abs(a - b) for a, b in zip(candidate.token_logprobs, check.token_logprobs)) < TOLERANCE


@pytest.mark.slow  # starts the vLLM engine
def test_stop_strings_end_answers_as_the_transformers_engine_ends_them(engines, scenes):
    hf, vllm = engines
    expected = hf.generate(scenes, max_new_tokens=40, stop=["triangle", "circle"])
    found = vllm.generate(scenes, max_new_tokens=40, stop=["triangle", "circle"])
    assert [c.text for (c,) in found] == [c.text for (c,) in expected]
    assert [c.finish_reason for (c,) in found] == [c.finish_reason for (c,) in expected]
    assert any(c.finish_reason == "stop" for (c,) in found)


@pytest.mark.slow  # starts the vLLM engine
def test_sentence_steps_end_where_prefgen_s_rule_says_and_score_like_log_probs(engines, scenes):
    hf, vllm = engines
    partials = ["", "There is a red circle.", "There is a blue"]
    encoded = vllm.encode(scenes[:3])
    steps = vllm.sentence_steps(encoded, partials, rows=[0, 1, 2], k=4, max_new_tokens=16, seed=[5, 6, 7])
    assert [len(found) for found in steps] == [4, 4, 4]
    for partial, row, found in zip(partials, range(3), steps):
        for candidate in found:
            assert candidate.finish_reason in ("sentence", "eos", "length")
            if candidate.finish_reason == "sentence":
                end = find_sentence_end(candidate.text)
                assert end is not None and end.end == len(candidate.text.rstrip())
            check = hf.logprobs(scenes, [partial + candidate.text], rows=[row])[0]
            tail = check.token_logprobs[len(check.token_logprobs) - len(candidate.token_ids) :]
            if check.token_ids[-len(candidate.token_ids) :] == candidate.token_ids:
                assert max(abs(a - b) for a, b in zip(tail, candidate.token_logprobs)) < TOLERANCE
    again = vllm.sentence_steps(scenes[:3], partials, rows=[0, 1, 2], k=4, max_new_tokens=16, seed=[5, 6, 7])
    assert [[c.text for c in f] for f in again] == [[c.text for c in f] for f in steps]
    alone = vllm.sentence_steps(scenes[1:2], partials[1:2], k=4, max_new_tokens=16, seed=[6])
    assert [c.text for c in alone[0]] == [c.text for c in steps[1]]


@pytest.mark.slow  # starts the vLLM engine
def test_diverse_group_search_is_refused_with_the_reason(engines, scenes):
    _, vllm = engines
    with pytest.raises(PrefgenError, match="no diverse group search"):
        vllm.sentence_steps(scenes[:1], [""], strategy="diverse")


@pytest.mark.slow  # starts the vLLM engine
def test_the_same_model_reuses_the_running_engine(engines):
    from prefgen.models import VllmVLM

    assert VllmVLM.load(path=SHAPES_VLM, dtype="float32", device="cpu") is engines[1]


# ------------------------------------------------------------------------------- the continuation loop, scripted


class _Tokenizer:
    vocab = ["<eos>", " Dr", ".", " Smith", " is", " here", " 3", "5", " Next", " cat"]
    eos_token_id, bos_token = 0, None

    def decode(self, ids, skip_special_tokens=True):
        return "".join(self.vocab[i] for i in ids if not (skip_special_tokens and i == 0))


class _Output:
    def __init__(self, tokens, reason, stop_reason=None):
        class _Choice:
            pass

        choice = _Choice()
        choice.token_ids, choice.finish_reason, choice.stop_reason = tokens, reason, stop_reason
        choice.logprobs = [{t: type("L", (), {"logprob": -0.5})()} for t in tokens]
        self.outputs = [choice]


class _ScriptedLLM:
    """Answers each call with the next scripted output per request, and records the prompts it was given."""

    def __init__(self, script):
        self.script, self.prompts = list(script), []

    def generate(self, prompts, params, use_tqdm=False):
        self.prompts.append([p["prompt_token_ids"] for p in prompts])
        return [self.script.pop(0) for _ in prompts]


def _scripted_engine(script):
    from prefgen.models.vllm.engine import VllmVLM

    engine = object.__new__(VllmVLM)
    engine.llm, engine.tokenizer, engine.name = _ScriptedLLM(script), _Tokenizer(), "scripted"
    engine.eos_ids, engine.placeholder_ids = frozenset({0}), ()
    engine.seconds = {"start": 0.0, "engine": 0.0}
    return engine


def _requests(engine, settings, prompt=(9,)):
    from prefgen.models.vllm.engine import _Request

    return [_Request(list(prompt), ([], []), TextRow(engine.tokenizer, [], engine.eos_ids, settings), 11)]


def test_a_pause_that_is_no_sentence_end_continues_from_the_tokens_so_far():
    from prefgen.models.candidates import DecodeSettings

    settings = DecodeSettings(20, "sample", stop_at_sentence_end=True)
    # vLLM pauses at "Dr. " (a trigger); prefgen's rule sees an abbreviation and goes on; then a real end
    engine = _scripted_engine([_Output([1, 2, 3], "stop", ". "), _Output([4, 5, 2, 8], "stop", ". ")])
    (found,) = engine._run(_requests(engine, settings), settings)
    assert found.text == " Dr. Smith is here." and found.finish_reason == "sentence"
    assert found.token_ids == (1, 2, 3, 4, 5, 2)  # the look-ahead " Next" is not part of the sentence
    assert engine.llm.prompts == [[[9]], [[9, 1, 2, 3]]]


def test_a_number_s_point_is_no_end_and_the_budget_still_holds():
    from prefgen.models.candidates import DecodeSettings

    settings = DecodeSettings(4, "sample", stop_at_sentence_end=True)
    engine = _scripted_engine([_Output([6, 2], "stop", ". "), _Output([7, 9], "length")])
    (found,) = engine._run(_requests(engine, settings), settings)
    assert found.text == " 3.5 cat" and found.finish_reason == "length" and len(found.token_ids) == 4


def test_an_end_token_prefgen_does_not_list_still_ends_the_row():
    from prefgen.models.candidates import DecodeSettings

    settings = DecodeSettings(10, "greedy")
    engine = _scripted_engine([_Output([4, 5], "stop", None)])
    (found,) = engine._run(_requests(engine, settings), settings)
    assert found.finish_reason == "eos" and found.text == " is here"


# ------------------------------------------------------------------------------- layouts, support, failures


@pytest.mark.slow  # starts the vLLM engine
def test_checkpoints_prefgen_writes_load_in_both_engines(engines, scenes, tmp_path):
    from prefgen.models import VLM
    from prefgen.models.vllm.layout import needs_rekey, vllm_ready_folder, write_hub_layout

    assert needs_rekey(SHAPES_VLM)  # transformers 5 writes the bare vision tower vLLM refuses
    assert not needs_rekey(vllm_ready_folder(SHAPES_VLM))  # the copy vLLM loaded (the engines fixture)
    hub = write_hub_layout(SHAPES_VLM, tmp_path / "hub")
    assert not needs_rekey(hub)
    hf, _ = engines
    again = VLM.load(path=hub, dtype="float32", device="cpu")  # and transformers reads the Hub's layout
    assert [c.token_ids for (c,) in again.generate(scenes[:4], max_new_tokens=30)] == [
        c.token_ids for (c,) in hf.generate(scenes[:4], max_new_tokens=30)
    ]


def test_support_is_decided_from_the_config_before_any_model_loads(tmp_path, monkeypatch):
    import json

    from prefgen.models.config import VLMConfig
    from prefgen.models.vllm import support

    def folder(name, config):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps(config))
        return str(tmp_path / name)

    config = VLMConfig(path="x", engine="vllm")
    small = folder("small", {"model_type": "llava", "text_config": {"hidden_size": 64, "num_attention_heads": 4}})
    assert support.vllm_problems(small, None, config) == [
        "its attention head size is 16; vLLM's CPU attention runs only 32, 64, 80, 96, 112, 128, 160, 192, 224, "
        "256, 512; use engine: hf"
    ]
    odd = folder("odd", {"model_type": "blip-2"})
    assert support.vllm_problems(odd, None, config) == [
        "prefgen has not run the blip-2 family on vLLM; use engine: hf"
    ]
    assert support.vllm_problems(str(SHAPES_VLM), None, config) == []
    greedy = VLMConfig(path="x", engine="vllm", vllm={"kv_cache_gib": 4000})
    (found,) = support.vllm_problems(str(SHAPES_VLM), None, greedy)
    assert found.startswith("models.vlm.vllm.kv_cache_gib is 4000 GiB, more than the ") and found.endswith("lower it")
    monkeypatch.setattr(support, "installed", lambda: None)
    assert "vLLM is not installed" in support.vllm_problems(str(SHAPES_VLM), None, config)[0]


def test_an_engine_that_fails_says_why_and_what_to_change_in_one_line():
    from prefgen.models.vllm.support import start_failure

    error = start_failure(ValueError("No available memory for the cache blocks.\nTry increasing"), "m", False)
    assert "\n" not in str(error)
    assert str(error).startswith("the vLLM engine did not start for m: No available memory for the cache blocks.")
    assert str(error).endswith("lower models.vlm.vllm.kv_cache_gib or max_model_len, or free memory")
    other = start_failure(RuntimeError("Engine core initialization failed"), "m", True)
    assert "stopped while generating" in str(other) and "engine: hf" in str(other)


@pytest.mark.parametrize("family", ["llava", "qwen2_vl", "gemma3"])
def test_models_check_says_whether_vllm_runs_the_family(family, tiny_vlm_dir, tmp_path):
    import json

    from click.testing import CliRunner

    from prefgen.cli.models import models
    from prefgen.models.vllm.support import FAMILIES

    result = CliRunner().invoke(models, ["check", str(tiny_vlm_dir(family))])
    line = next(x for x in result.output.splitlines() if x.startswith("vllm:"))
    assert ("runs it (engine: vllm" in line) == (FAMILIES[family] is None)
    narrow = tmp_path / family
    narrow.mkdir()
    for item in tiny_vlm_dir(family).iterdir():
        (narrow / item.name).write_bytes(item.read_bytes())
    config = json.loads((narrow / "config.json").read_text())
    config["text_config"].update(head_dim=16, num_attention_heads=4)
    (narrow / "config.json").write_text(json.dumps(config))
    result = CliRunner().invoke(models, ["check", str(narrow)])
    assert "vllm:          cannot run it: vLLM's CPU build has no attention for head size 16" in result.output


def test_only_clip_and_siglip_towers_are_re_keyed(tiny_vlm_dir):
    from prefgen.models.vllm.layout import needs_rekey

    assert needs_rekey(tiny_vlm_dir("llava")) and needs_rekey(tiny_vlm_dir("gemma3"))
    # InternVL's and Qwen's towers are saved as the Hub has them: re-keying them would break vLLM's loader
    assert not needs_rekey(tiny_vlm_dir("internvl")) and not needs_rekey(tiny_vlm_dir("qwen2_vl"))
