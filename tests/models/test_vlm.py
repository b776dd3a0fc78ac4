"""The VLM runtime on a tiny random model of each family: every public method, checked against plain forwards."""

import pytest
import torch

from prefgen.core.errors import PrefgenError
from prefgen.models import Prompt
from prefgen.models.prompts import encode_continuation
from prefgen.models.sentences import find_sentence_end

TOLERANCE = 1e-4


def independent_logprobs(vlm, prompt, continuation_ids):
    """Token log-probs from one plain, unpadded, uncached forward pass built with the processor directly."""
    text = vlm.processor.apply_chat_template(prompt.messages(), add_generation_prompt=True, tokenize=False)
    bos = vlm.tokenizer.bos_token
    inputs = vlm.processor(
        text=[text],
        images=[list(prompt.images)],
        return_tensors="pt",
        add_special_tokens=not (bos and text.startswith(bos)),
    )
    tail = torch.tensor([list(continuation_ids)])
    inputs["input_ids"] = torch.cat([inputs["input_ids"], tail], dim=1)
    inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    for key in ("mm_token_type_ids", "token_type_ids"):  # Qwen-VL / Gemma 3 mark image tokens; the tail is text
        if key in inputs:
            types = inputs[key]
            inputs[key] = torch.cat([types, torch.zeros_like(tail, dtype=types.dtype)], dim=1)
    with torch.no_grad():
        logits = vlm.model(**inputs).logits[0].float()
    n = tail.shape[1]
    return torch.log_softmax(logits[-n - 1 : -1], dim=-1).gather(1, tail[0][:, None])[:, 0]


def token_id(vlm, text: str) -> int:
    """The id of the last token of ``"a" + text``: "." or a word with its leading space, whatever the tokenizer."""
    return encode_continuation(vlm.tokenizer, "a" + text)[-1]


class biased:
    """Add a large bias to some tokens' logits so a random model writes sentences out of them."""

    def __init__(self, vlm, token_ids, bias=8.0):
        self.head, self.ids, self.bias = vlm.model.get_output_embeddings(), token_ids, bias

    def __enter__(self):
        def hook(module, inputs, output):
            output = output.clone()
            output[..., self.ids] += self.bias
            return output

        self.handle = self.head.register_forward_hook(hook)

    def __exit__(self, *exc):
        self.handle.remove()


# ---------------------------------------------------------------------------------------------------- generate


def test_greedy_batch_equals_single_prompts(vlm, prompts):
    batched = vlm.generate(prompts, max_new_tokens=12)
    singles = [vlm.generate([p], max_new_tokens=12)[0] for p in prompts]
    assert [b[0].token_ids for b in batched] == [s[0].token_ids for s in singles]
    assert all(len(b[0].token_ids) > 0 for b in batched)


def test_generated_logprobs_match_an_independent_forward(vlm, prompts):
    for prompt, (candidate,) in zip(prompts, vlm.generate(prompts, max_new_tokens=10)):
        expected = independent_logprobs(vlm, prompt, candidate.token_ids)
        assert torch.allclose(torch.tensor(candidate.token_logprobs), expected, atol=TOLERANCE, rtol=0)
        assert candidate.logprob_sum == pytest.approx(sum(candidate.token_logprobs), abs=1e-9)


def test_sampled_logprobs_match_an_independent_forward(vlm, prompts):
    found = vlm.generate(prompts[:2], n=2, temperature=1.3, top_p=0.9, max_new_tokens=8, seed=3)
    for prompt, candidates in zip(prompts, found):
        for candidate in candidates:
            expected = independent_logprobs(vlm, prompt, candidate.token_ids)
            assert torch.allclose(torch.tensor(candidate.token_logprobs), expected, atol=TOLERANCE, rtol=0)


def test_sampling_is_seeded_and_gives_n_answers(vlm, prompts):
    first = vlm.generate(prompts[:2], n=3, temperature=1.0, max_new_tokens=8, seed=7)
    again = vlm.generate(prompts[:2], n=3, temperature=1.0, max_new_tokens=8, seed=7)
    other = vlm.generate(prompts[:2], n=3, temperature=1.0, max_new_tokens=8, seed=8)
    assert [len(c) for c in first] == [3, 3]
    assert [[c.token_ids for c in cs] for cs in first] == [[c.token_ids for c in cs] for cs in again]
    assert [[c.token_ids for c in cs] for cs in first] != [[c.token_ids for c in cs] for cs in other]


def test_sampling_with_per_prompt_seeds_does_not_depend_on_the_batch(vlm, prompts):
    seeds = [101, 202, 303]
    batched = vlm.generate(prompts, n=2, temperature=1.0, max_new_tokens=8, seed=seeds)
    alone = [vlm.generate([p], n=2, temperature=1.0, max_new_tokens=8, seed=[s])[0] for p, s in zip(prompts, seeds)]
    assert [[c.token_ids for c in cs] for cs in batched] == [[c.token_ids for c in cs] for cs in alone]
    steps = vlm.sentence_steps(prompts, ["The", "", "It"], k=2, max_new_tokens=8, seed=seeds)
    single = vlm.sentence_steps(prompts[1:2], [""], k=2, max_new_tokens=8, seed=[202])
    assert [c.token_ids for c in steps[1]] == [c.token_ids for c in single[0]]


def test_max_new_tokens_is_respected(vlm, prompts):
    ((candidate,),) = vlm.generate(prompts[:1], max_new_tokens=5)
    assert len(candidate.token_ids) <= 5
    assert candidate.finish_reason in ("length", "eos")


def test_stop_string_ends_generation_where_it_appears(vlm, prompts):
    ((free,),) = vlm.generate(prompts[:1], max_new_tokens=16)
    stop = next(free.text[i : i + 2] for i in range(3, len(free.text) - 2) if free.text[i : i + 2].strip())
    ((stopped,),) = vlm.generate(prompts[:1], max_new_tokens=16, stop=[stop])
    assert stopped.finish_reason == "stop"
    assert stop in stopped.text and free.text.startswith(stopped.text)
    assert stop not in vlm.tokenizer.decode(stopped.token_ids[:-1], skip_special_tokens=True)


def test_eos_ends_an_answer_and_counts_in_its_logprob(vlm, prompts):
    eos = vlm.tokenizer.eos_token_id
    with biased(vlm, [eos], bias=50.0):
        ((candidate,),) = vlm.generate(prompts[:1], max_new_tokens=8)
    assert candidate.finished and candidate.finish_reason == "eos"
    assert candidate.token_ids == (eos,) and candidate.text == ""
    assert candidate.token_logprobs[0] > -1e-3  # the biased EOS is near certain


def test_greedy_with_n_above_one_is_refused(vlm, prompts):
    with pytest.raises(ValueError, match="identical"):
        vlm.generate(prompts[:1], n=2)


# ---------------------------------------------------------------------------------------------------- sentence steps


def test_sentence_steps_stop_at_sentence_ends(vlm, prompts):
    period, word = token_id(vlm, "."), token_id(vlm, " the")
    partials = ["The image", "", "It is red."]
    with biased(vlm, [period, word]):
        steps = vlm.sentence_steps(prompts, partials, k=4, max_new_tokens=24, seed=1)
    reasons = [c.finish_reason for cands in steps for c in cands]
    assert reasons.count("sentence") >= 8, reasons
    for partial, candidates in zip(partials, steps):
        assert len(candidates) == 4
        for candidate in candidates:
            if candidate.finish_reason == "sentence":
                end = find_sentence_end(candidate.text)
                assert end is not None and candidate.text[end.end :].strip() == "", candidate.text
                assert candidate.text.rstrip().endswith(".")
            ids = encode_continuation(vlm.tokenizer, partial) + list(candidate.token_ids)
            assert vlm.tokenizer.decode(ids, skip_special_tokens=True) == partial + candidate.text


def test_sentence_candidates_keep_the_leading_space(vlm, prompts):
    word = token_id(vlm, " the")
    with biased(vlm, [word], bias=50.0):
        (candidates,) = vlm.sentence_steps(prompts[:1], ["It is red."], k=2, max_new_tokens=3)
    assert all(c.text.startswith(" the") for c in candidates), [c.text for c in candidates]


def test_sentence_step_logprobs_match_scoring_the_whole_answer(vlm, prompts):
    partials = ["The image", "It is"]
    steps = vlm.sentence_steps(prompts[:2], partials, k=3, max_new_tokens=10, seed=5)
    for prompt, partial, candidates in zip(prompts, partials, steps):
        prefix = encode_continuation(vlm.tokenizer, partial)
        for candidate in candidates:
            expected = independent_logprobs(vlm, prompt, prefix + list(candidate.token_ids))[len(prefix) :]
            assert torch.allclose(torch.tensor(candidate.token_logprobs), expected, atol=TOLERANCE, rtol=0)


def test_encoded_prompts_are_reused_across_steps_with_the_same_result(vlm, prompts):
    encoded = vlm.encode(prompts)
    fresh = vlm.sentence_steps(prompts, ["The image", "", "A"], k=2, max_new_tokens=8, seed=2)
    reused = vlm.sentence_steps(encoded, ["The image", "", "A"], k=2, max_new_tokens=8, seed=2)
    again = vlm.sentence_steps(encoded, ["The image", "", "A"], k=2, max_new_tokens=8, seed=2)
    ids = lambda steps: [[c.token_ids for c in cands] for cands in steps]  # noqa: E731
    assert ids(fresh) == ids(reused) == ids(again)


def test_rows_map_several_partial_answers_to_one_prompt(vlm, prompts):
    encoded = vlm.encode(prompts[:2])
    steps = vlm.sentence_steps(encoded, ["The", "A cat", "It"], rows=[1, 1, 0], k=2, max_new_tokens=6, seed=0)
    assert [len(c) for c in steps] == [2, 2, 2]
    alone = vlm.sentence_steps([prompts[1]], ["A cat"], k=2, max_new_tokens=6, strategy="diverse")
    mapped = vlm.sentence_steps(encoded, ["The", "A cat"], rows=[0, 1], k=2, max_new_tokens=6, strategy="diverse")
    assert [c.token_ids for c in alone[0]] == [c.token_ids for c in mapped[1]]


def test_diverse_candidates_start_differently_and_the_first_is_greedy(vlm, prompts):
    (candidates,) = vlm.sentence_steps(prompts[:1], [""], k=3, strategy="diverse", max_new_tokens=6)
    assert len({c.token_ids[0] for c in candidates}) == 3
    ((greedy,),) = vlm.generate(prompts[:1], max_new_tokens=6)
    first = candidates[0].token_ids
    assert greedy.token_ids[: len(first)] == first


# ---------------------------------------------------------------------------------------------------- logprobs


def test_logprobs_of_text_match_an_independent_forward(vlm, prompts):
    answers = ["It is red.", "A blue square on a white background.", "No"]
    scored = vlm.logprobs(prompts, answers)
    for prompt, answer, result in zip(prompts, answers, scored):
        ids = encode_continuation(vlm.tokenizer, answer)
        assert list(result.token_ids) == ids
        expected = independent_logprobs(vlm, prompt, ids)
        assert torch.allclose(torch.tensor(result.token_logprobs), expected, atol=TOLERANCE, rtol=0)
        assert result.logprob_mean == pytest.approx(result.logprob_sum / len(ids))


def test_logprobs_of_generated_ids_equal_the_generation_scores(vlm, prompts):
    generated = [c for (c,) in vlm.generate(prompts, max_new_tokens=8)]
    scored = vlm.logprobs(prompts, [c.token_ids for c in generated])
    for candidate, result in zip(generated, scored):
        assert result.logprob_sum == pytest.approx(candidate.logprob_sum, abs=TOLERANCE)


def test_logprobs_rows_and_eos(vlm, prompts):
    scored = vlm.logprobs(prompts[:1], ["It is red.", ""], rows=[0, 0], append_eos=True)
    assert scored[0].token_ids[-1] == vlm.tokenizer.eos_token_id
    assert scored[1].token_ids == (vlm.tokenizer.eos_token_id,)
    empty = vlm.logprobs(prompts[:1], [""])[0]
    assert empty.token_ids == () and empty.logprob_sum == 0.0


# ---------------------------------------------------------------------------------------------------- inputs


def test_empty_prompt_is_a_clear_error():
    with pytest.raises(PrefgenError, match="empty prompt"):
        Prompt("   ")


def test_text_only_prompts_generate(vlm):
    ((candidate,),) = vlm.generate([Prompt("Say something.")], max_new_tokens=4)
    assert 0 < len(candidate.token_ids) <= 4


def test_image_modes_give_the_same_answer_as_their_rgb_conversion(vlm, odd_images):
    from prefgen.models.images import to_rgb

    odd = [Prompt("What is this?", image) for image in odd_images]
    rgb = [Prompt("What is this?", to_rgb(image)) for image in odd_images]
    assert [c[0].token_ids for c in vlm.generate(odd, max_new_tokens=4)] == [
        c[0].token_ids for c in vlm.generate(rgb, max_new_tokens=4)
    ]


def test_huge_image_is_resized_not_exhausting_memory(vlm, huge_image):
    ((candidate,),) = vlm.generate([Prompt("What is this?", huge_image)], max_new_tokens=3)
    assert 0 < len(candidate.token_ids) <= 3


@pytest.fixture(scope="module")
def odd_images():
    import numpy as np
    from PIL import Image

    palette = Image.new("P", (30, 20), 1)
    palette.putpalette([0, 0, 0, 200, 10, 10, 10, 200, 10])
    palette.info["transparency"] = 0
    return [
        Image.new("L", (30, 20), 90),
        Image.new("RGBA", (30, 20), (200, 10, 10, 100)),
        palette,
        Image.new("CMYK", (30, 20), (0, 200, 200, 0)),
        Image.fromarray(np.full((20, 30), 50000, dtype=np.uint16)),
    ]


@pytest.fixture(scope="module")
def huge_image():
    import numpy as np
    from PIL import Image

    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (4500, 4000, 3), dtype=np.uint8))


def test_several_images_per_prompt(vlm, images):
    prompt = Prompt("Compare the two pictures.", images[:2])
    ((candidate,),) = vlm.generate([prompt], max_new_tokens=6)
    expected = independent_logprobs(vlm, prompt, candidate.token_ids)
    assert torch.allclose(torch.tensor(candidate.token_logprobs), expected, atol=TOLERANCE, rtol=0)


def test_results_do_not_depend_on_the_batch_size(vlm, prompts):
    from prefgen.models import VLM

    small = VLM(vlm.model, vlm.processor, batch_size=2)
    five = prompts + prompts[:2]
    assert [c[0].token_ids for c in small.generate(five, max_new_tokens=6)] == [
        c[0].token_ids for c in vlm.generate(five, max_new_tokens=6)
    ]
    partials, rows = ["The", "A", "It is", "", "No"], [0, 0, 1, 2, 4]
    for strategy in ("diverse", "sample"):
        steps = dict(k=2, rows=rows, max_new_tokens=6, strategy=strategy, seed=4)
        assert [[c.token_ids for c in cs] for cs in small.sentence_steps(five, partials, **steps)] == [
            [c.token_ids for c in cs] for cs in vlm.sentence_steps(five, partials, **steps)
        ]
    scored_small = small.logprobs(five, partials, rows=rows)
    scored = vlm.logprobs(five, partials, rows=rows)
    assert [s.logprob_sum for s in scored_small] == pytest.approx([s.logprob_sum for s in scored], abs=TOLERANCE)


def test_prompt_rows_out_of_range_are_refused(vlm, prompts):
    with pytest.raises(ValueError, match="rows must lie in 0..2"):
        vlm.sentence_steps(prompts, ["x"], rows=[3])


def test_image_placeholder_tokens_are_never_generated(vlm, prompts):
    assert vlm.placeholder_ids
    with biased(vlm, list(vlm.placeholder_ids), bias=50.0):
        found = vlm.generate(prompts[:1], n=2, temperature=1.0, max_new_tokens=6, seed=0)
        ((greedy,),) = vlm.generate(prompts[:1], max_new_tokens=6)
    tokens = {t for c in [*found[0], greedy] for t in c.token_ids}
    assert not tokens & set(vlm.placeholder_ids)


# ---------------------------------------------------------------------------------------------------- prefix paths


def test_re_encoding_the_prefix_gives_what_prefix_reuse_gives(vlm, prompts):
    """The reference: the same model forced to encode prompt + partial answer from scratch on every call."""
    from prefgen.models import VLM

    fresh = VLM(vlm.model, vlm.processor, prefix_path="re-encode")
    ids = lambda steps: [[c.token_ids for c in cands] for cands in steps]  # noqa: E731
    partials, rows = ["The image", "", "It is red.", "A"], [0, 1, 2, 0]
    for strategy in ("diverse", "sample"):
        steps = dict(k=3, rows=rows, max_new_tokens=8, strategy=strategy, seed=6)
        reference = fresh.sentence_steps(prompts, partials, **steps)
        assert ids(vlm.sentence_steps(prompts, partials, **steps)) == ids(reference)
        assert ids(vlm.sentence_steps(vlm.encode(prompts), partials, **steps)) == ids(reference)
    for ours, theirs in zip(vlm.logprobs(prompts, partials, rows=rows), fresh.logprobs(prompts, partials, rows=rows)):
        assert torch.allclose(torch.tensor(ours.token_logprobs), torch.tensor(theirs.token_logprobs), atol=TOLERANCE)


def test_the_prefix_path_is_logged_once_per_model(vlm, prompts, caplog):
    import logging

    from prefgen.models import VLM

    fresh = VLM(vlm.model, vlm.processor)
    with caplog.at_level(logging.INFO, logger="prefgen.models"):
        for _ in range(2):
            fresh.sentence_steps(prompts[:2], ["The", ""], k=2, max_new_tokens=4, strategy="diverse")
            fresh.logprobs(prompts[:1], ["It is red."])
    lines = [r.getMessage() for r in caplog.records if r.name == "prefgen.models"]
    assert len(lines) == 1, lines
    expected = "prefix reuse" if fresh.reuse_limit is None else "prefix re-encoding"
    assert expected in lines[0] and fresh.cache_kind in lines[0]


def test_forcing_prefix_reuse_where_it_is_not_exact_is_refused(vlm, prompts):
    from prefgen.models import VLM

    forced = VLM(vlm.model, vlm.processor, prefix_path="reuse")
    if vlm.reuse_limit is None:
        assert forced.sentence_steps(prompts[:1], ["The"], k=1, max_new_tokens=2, strategy="diverse")
        return
    with pytest.raises(PrefgenError, match="prefix reuse is not exact"):
        forced.sentence_steps(prompts[:1], ["The"], k=1, max_new_tokens=2, strategy="diverse")


def test_cache_kinds_of_the_hybrid_families(tiny_vlm_dir):
    """Gemma 3 slides a window over some layers, Qwen3.5 has linear-attention layers; the others are plain."""
    from prefgen.models import VLM
    from prefgen.models.tiny.configs import GEMMA3_SLIDING_WINDOW

    gemma = VLM.load(path=str(tiny_vlm_dir("gemma3")), device="cpu", dtype="float32")
    assert gemma.reuse_limit == GEMMA3_SLIDING_WINDOW and "DynamicSlidingWindowLayer" in gemma.cache_kind
    qwen = VLM.load(path=str(tiny_vlm_dir("qwen3_5")), device="cpu", dtype="float32")
    assert qwen.reuse_limit == 0 and "LinearAttentionLayer" in qwen.cache_kind


def test_unknown_prefix_path_is_refused(vlm):
    from prefgen.models import VLM

    with pytest.raises(ValueError, match="prefix_path"):
        VLM(vlm.model, vlm.processor, prefix_path="sometimes")


def test_sliding_window_cache_is_reused_while_rows_fit_the_window(tiny_vlm_dir, tmp_path, prompts, caplog):
    """Gemma 3 with a window longer than every row: the prompt cache (sliding layers included) is copied, extended
    and decoded, and gives what re-encoding gives; the tiny model's 16-token window forces re-encoding instead."""
    import json
    import logging
    import shutil

    from prefgen.models import VLM

    folder = tmp_path / "gemma3-wide"
    shutil.copytree(tiny_vlm_dir("gemma3"), folder)
    config = json.loads((folder / "config.json").read_text())
    config["text_config"]["sliding_window"] = 512
    (folder / "config.json").write_text(json.dumps(config))
    wide = VLM.load(path=str(folder), device="cpu", dtype="float32")
    assert wide.reuse_limit == 512
    reference = VLM(wide.model, wide.processor, prefix_path="re-encode")
    steps = dict(k=3, max_new_tokens=8, strategy="diverse")
    with caplog.at_level(logging.INFO, logger="prefgen.models"):
        reused = wide.sentence_steps(wide.encode(prompts), ["The image", "", "It is red."], **steps)
    assert any("prefix reuse (rows stay inside the 512-token window" in r.getMessage() for r in caplog.records)
    again = reference.sentence_steps(prompts, ["The image", "", "It is red."], **steps)
    assert [[c.token_ids for c in cs] for cs in reused] == [[c.token_ids for c in cs] for cs in again]
    for ours, theirs in zip(
        wide.logprobs(prompts, ["It is red.", "A", ""]), reference.logprobs(prompts, ["It is red.", "A", ""])
    ):
        assert torch.allclose(torch.tensor(ours.token_logprobs), torch.tensor(theirs.token_logprobs), atol=TOLERANCE)
