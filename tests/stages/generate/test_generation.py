"""The VLM generation stages `caption`, `answer`, `answer_corrupted` and `self_enhance`: their logic against a
scripted VLM, and their outputs on the tiny random LLaVA (written for every row, independent of the batch size)."""

import io
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from prefgen.models import Candidate, Prompt
from prefgen.models.images import decode_image
from prefgen.stages.base import Drop
from prefgen.stages.corrupt.pixels import apply_corruption
from prefgen.stages.corrupt.stage import Corrupt, CorruptParams
from prefgen.stages.generate.answer import Answer, AnswerParams
from prefgen.stages.generate.answer_corrupted import AnswerCorrupted, AnswerCorruptedParams
from prefgen.stages.generate.caption import CONCISE_PROMPT, DETAILED_PROMPT, Caption, CaptionParams
from prefgen.stages.generate.self_enhance import ENHANCE_PROMPT_NO_CAPTION, SelfEnhance, SelfEnhanceParams

COLORS = [(220, 30, 30), (30, 200, 40), (40, 40, 220)]


class ScriptedVLM:
    """Stands in for ``VLM.generate``: ``reply(prompt, sample)`` writes each text; every call is recorded."""

    def __init__(self, reply=lambda prompt, sample: "A reply."):
        self.reply, self.calls = reply, []

    def generate(self, prompts, *, n=1, max_new_tokens=256, temperature=0.0, top_p=1.0, stop=(), seed=0):
        prompts = list(prompts)
        self.calls.append(
            {
                "prompts": prompts,
                "n": n,
                "temperature": temperature,
                "top_p": top_p,
                "stop": list(stop),
                "seed": seed,
                "max_new_tokens": max_new_tokens,
            }
        )
        return [[Candidate.build([1], self.reply(p, k), [-1.0], "eos") for k in range(n)] for p in prompts]


class Recording:
    """A real VLM whose ``generate`` calls keep their prompts, to see what the model was shown."""

    def __init__(self, vlm):
        self.vlm, self.prompts = vlm, []

    def generate(self, prompts, **kwargs):
        self.prompts.append(list(prompts))
        return self.vlm.generate(prompts, **kwargs)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def textured(i: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(i).integers(0, 256, size=(32, 40, 3), dtype=np.uint8))


def row(i: int, image: Image.Image | None = None, **extra) -> dict:
    image = image or Image.new("RGB", (24, 16), COLORS[i % len(COLORS)])
    return {"row_id": f"r{i}", "image_id": f"img{i}", "image": {"bytes": png(image), "path": f"{i}.png"}, **extra}


def textured_rows(n: int = 3, **extra) -> list[dict]:
    return [row(i, textured(i), **extra) for i in range(n)]


def ready(stage, vlm):
    stage.setup(SimpleNamespace(vlm=vlm))
    return stage


def one_by_one(stage, rows):
    return [item for r in rows for item in stage.process([r])]


def color_of(prompt: Prompt) -> tuple:
    [image] = prompt.images
    return image.getpixel((0, 0))


def same_pixels(a: Image.Image, b: Image.Image) -> bool:
    return np.array_equal(np.asarray(a), np.asarray(b))


# ---------------------------------------------------------------------------------------------- caption


def test_caption_and_detailed_caption_come_from_one_greedy_call_over_the_batch():
    vlm = ScriptedVLM(lambda p, k: f"{'detailed' if p.text == DETAILED_PROMPT else 'short'} {color_of(p)}")
    out = ready(Caption(CaptionParams(detailed=True, max_new_tokens=9), seed=0), vlm).process([row(0), row(1)])
    assert [(r["caption"], r["detailed_caption"]) for r in out] == [
        (f"short {COLORS[0]}", f"detailed {COLORS[0]}"),
        (f"short {COLORS[1]}", f"detailed {COLORS[1]}"),
    ]
    [call] = vlm.calls
    assert [p.text for p in call["prompts"]] == [CONCISE_PROMPT] * 2 + [DETAILED_PROMPT] * 2
    assert (call["temperature"], call["n"], call["max_new_tokens"]) == (0.0, 1, 9)


def test_undecodable_image_drops_its_row_and_the_batch_goes_on():
    broken = {**row(1), "image": {"bytes": b"not a png", "path": "x.png"}}
    out = ready(Caption(CaptionParams(), seed=0), ScriptedVLM()).process([row(0), broken, row(2)])
    assert isinstance(out[1], Drop) and out[1].reason == "undecodable_image" and out[1].row is broken
    assert [out[0]["caption"], out[2]["caption"]] == ["A reply.", "A reply."]
    assert "detailed_caption" not in out[0]


def test_caption_on_tiny_llava_is_the_greedy_description_whatever_the_batch(tiny_llava):
    rows = textured_rows()
    stage = ready(Caption(CaptionParams(detailed=True, max_new_tokens=6), seed=0), tiny_llava)
    out = stage.process(rows)
    assert out == one_by_one(stage, rows)
    for r, o in zip(rows, out):
        image = decode_image(r["image"])
        [[short]] = tiny_llava.generate([Prompt(CONCISE_PROMPT, image)], max_new_tokens=6)
        assert o["caption"] == short.text.strip()
        assert isinstance(o["detailed_caption"], str) and o["row_id"] == r["row_id"]


# ---------------------------------------------------------------------------------------------- answer


@pytest.mark.parametrize("params", [AnswerParams, AnswerCorruptedParams])
def test_several_greedy_answers_are_a_validation_error(params):
    with pytest.raises(ValueError, match=r"n = 3 needs sampling.*set temperature > 0"):
        params(n=3)
    assert params(n=3, temperature=0.7).n == 3


def test_greedy_answer_asks_question_plus_suffix_and_cuts_at_the_stop_string():
    vlm = ScriptedVLM(lambda p, k: f" It is {color_of(p)}.\nUSER: and more")
    stage = ready(Answer(AnswerParams(prompt_suffix="\nAnswer briefly.", stop=["USER:"]), seed=5), vlm)
    rows = [row(0, question="What color?"), row(1, question="Which color?")]
    out = stage.process(rows)
    assert [r["answer"] for r in out] == [f"It is {COLORS[0]}.", f"It is {COLORS[1]}."]
    [call] = vlm.calls
    assert [p.text for p in call["prompts"]] == ["What color?\nAnswer briefly.", "Which color?\nAnswer briefly."]
    assert call["stop"] == ["USER:"] and call["temperature"] == 0.0 and call["n"] == 1
    assert call["seed"] == [stage.seed_for(r) for r in rows]


def test_description_rows_get_their_own_suffix_when_one_is_set():
    vlm = ScriptedVLM(lambda p, k: "ok")
    params = AnswerParams(prompt_suffix="\nOne word.", description_suffix="\nOne sentence.")
    rows = [
        row(0, question="What color?", question_source="self_question"),
        row(1, question="Describe it.", question_source="description"),
        row(2, question="Why?"),
    ]
    ready(Answer(params, seed=0), vlm).process(rows)
    assert [p.text for p in vlm.calls[0]["prompts"]] == [
        "What color?\nOne word.",
        "Describe it.\nOne sentence.",
        "Why?\nOne word.",
    ]
    ready(Answer(AnswerParams(prompt_suffix="\nOne word."), seed=0), vlm).process(rows[1:2])  # unset: one suffix
    assert vlm.calls[1]["prompts"][0].text == "Describe it.\nOne word."


def test_the_prompt_as_asked_is_written_when_asked_for():
    params = AnswerParams(prompt_suffix="\nOne word.", description_suffix="\nOne sentence.", prompt_output="asked")
    assert params.output_columns() == ["answer", "asked"]
    rows = [row(0, question="What color?"), row(1, question="Describe it.", question_source="description")]
    out = ready(Answer(params, seed=0), ScriptedVLM(lambda p, k: "ok")).process(rows)
    assert [(r["asked"], r["answer"]) for r in out] == [
        ("What color?\nOne word.", "ok"),
        ("Describe it.\nOne sentence.", "ok"),
    ]
    assert "asked" not in ready(Answer(AnswerParams(), seed=0), ScriptedVLM()).process(rows[:1])[0]


def test_sampled_answers_are_a_list_per_row():
    vlm = ScriptedVLM(lambda p, k: f"answer {k}")
    stage = ready(Answer(AnswerParams(output="samples", n=3, temperature=0.9, top_p=0.8), seed=0), vlm)
    [out] = stage.process([row(0, question="What?")])
    assert out["samples"] == ["answer 0", "answer 1", "answer 2"]
    assert (vlm.calls[0]["n"], vlm.calls[0]["temperature"], vlm.calls[0]["top_p"]) == (3, 0.9, 0.8)


def test_rows_without_a_question_are_dropped():
    vlm = ScriptedVLM()
    out = ready(Answer(AnswerParams(), seed=0), vlm).process([row(0, question="  "), row(1, question="Why?")])
    assert isinstance(out[0], Drop) and (out[0].reason, out[0].detail) == ("missing_question", "question: '  '")
    assert out[1]["answer"] == "A reply." and len(vlm.calls[0]["prompts"]) == 1


def test_sampled_answers_on_tiny_llava_follow_the_row_seed_not_the_batch(tiny_llava):
    rows = textured_rows(question="What is in the picture?")
    stage = ready(Answer(AnswerParams(n=2, temperature=1.0, max_new_tokens=6), seed=3), tiny_llava)
    out = stage.process(rows)
    assert out == one_by_one(stage, rows)
    for r, o in zip(rows, out):
        prompt = Prompt("What is in the picture?", decode_image(r["image"]))
        direct = tiny_llava.generate([prompt], n=2, temperature=1.0, max_new_tokens=6, seed=[stage.seed_for(r)])
        assert o["answer"] == [c.text.strip() for c in direct[0]]


# ---------------------------------------------------------------------------------------------- answer_corrupted


def corrupted_rows(n: int = 2) -> list[dict]:
    corrupt = Corrupt(CorruptParams(ops=[{"op": "diffusion_noise", "t": 600, "space": "pixel"}]), seed=1)
    return corrupt.process(textured_rows(n, question="What is in the picture?"))


def test_answer_corrupted_shows_the_model_the_recreated_corrupted_image():
    rows = corrupted_rows()
    vlm = Recording(ScriptedVLM())
    out = ready(AnswerCorrupted(AnswerCorruptedParams(), seed=0), vlm).process(rows)
    assert [r["corrupted_answer"] for r in out] == ["A reply.", "A reply."]
    [prompts] = vlm.prompts
    for r, prompt in zip(rows, prompts):
        clean = decode_image(r["image"])
        [seen] = prompt.images
        assert same_pixels(seen, apply_corruption(clean, r["corruption"]))
        assert not same_pixels(seen, clean)


def test_malformed_corruption_drops_its_row():
    rows = corrupted_rows()
    rows[0] = {**rows[0], "corruption": '{"ops": []}'}
    out = ready(AnswerCorrupted(AnswerCorruptedParams(), seed=0), ScriptedVLM()).process(rows)
    assert isinstance(out[0], Drop) and out[0].reason == "bad_corruption" and "'ops'" in out[0].detail
    assert out[1]["corrupted_answer"] == "A reply."


def test_answer_corrupted_on_tiny_llava_does_not_depend_on_the_batch(tiny_llava):
    rows = corrupted_rows(3)
    stage = ready(AnswerCorrupted(AnswerCorruptedParams(max_new_tokens=6), seed=0), tiny_llava)
    out = stage.process(rows)
    assert out == one_by_one(stage, rows)
    assert all(isinstance(r["corrupted_answer"], str) and "answer" not in r for r in out)


# ---------------------------------------------------------------------------------------------- self_enhance


def enhance_row(i: int, answer, caption="A red square on white.") -> dict:
    return row(i, question="What shape is it?", caption=caption, answer=answer)


def test_output_replaces_the_answer_only_when_it_starts_with_the_prefix():
    replies = {"square": "Improved Answer: A red square.", "circle": "The answer is a circle."}
    vlm = ScriptedVLM(lambda p, k: next(v for key, v in replies.items() if f"Current Answer: {key}" in p.text))
    out = ready(SelfEnhance(SelfEnhanceParams(), seed=0), vlm).process(
        [enhance_row(0, "square"), enhance_row(1, "circle")]
    )
    assert [(r["enhanced_answer"], r["enhanced_answer_improved"]) for r in out] == [
        ("A red square.", True),
        ("circle", False),
    ]
    assert (
        "Image Description: A red square on white.\nQuestion: What shape is it?\nCurrent Answer: square"
        in vlm.calls[0]["prompts"][0].text
    )


def test_a_list_of_answers_is_improved_element_by_element_in_one_call():
    vlm = ScriptedVLM(
        lambda p, k: (
            "oops"
            if "Current Answer: b" in p.text
            else "Improved Answer: better " + p.text.split("Current Answer: ")[1].split("\n")[0]
        )
    )
    stage = ready(SelfEnhance(SelfEnhanceParams(input="samples", output="best"), seed=0), vlm)
    out = stage.process([{**enhance_row(0, None), "samples": ["a", "b"]}, {**enhance_row(1, None), "samples": ["c"]}])
    assert [(r["best"], r["best_improved"]) for r in out] == [
        (["better a", "b"], [True, False]),
        (["better c"], [True]),
    ]
    [call] = vlm.calls
    assert len(call["prompts"]) == 3 and call["temperature"] == 0.0


@pytest.mark.parametrize("caption", ["Yes", "yes.", "No", ""])
def test_a_yes_or_no_caption_uses_the_template_without_description(caption):
    vlm = ScriptedVLM()
    ready(SelfEnhance(SelfEnhanceParams(), seed=0), vlm).process([enhance_row(0, "square", caption=caption)])
    [prompt] = vlm.calls[0]["prompts"]
    assert prompt.text == ENHANCE_PROMPT_NO_CAPTION.replace("{question}", "What shape is it?").replace(
        "{answer}", "square"
    )


def test_rows_of_a_kept_source_keep_their_answer_without_a_prompt():
    vlm = ScriptedVLM(lambda p, k: "Improved Answer: better")
    rows = [
        {**enhance_row(0, "a red square."), "question_source": "description"},
        {**enhance_row(1, "square"), "question_source": "self_question"},
    ]
    out = ready(SelfEnhance(SelfEnhanceParams(keep_sources=["description"]), seed=0), vlm).process(rows)
    assert [(r["enhanced_answer"], r["enhanced_answer_improved"]) for r in out] == [
        ("a red square.", False),
        ("better", True),
    ]
    [call] = vlm.calls
    assert len(call["prompts"]) == 1 and "Current Answer: square" in call["prompts"][0].text


def test_rows_without_an_answer_are_dropped():
    out = ready(SelfEnhance(SelfEnhanceParams(), seed=0), ScriptedVLM()).process(
        [enhance_row(0, None), enhance_row(1, []), enhance_row(2, ["a", 3])]
    )
    assert [d.reason for d in out] == ["missing_column"] * 3
    assert out[0].detail == "answer is not a text or a list of texts: None"


def test_a_missing_candidate_in_a_list_is_kept_as_none_without_a_prompt():
    vlm = ScriptedVLM()
    [row] = ready(SelfEnhance(SelfEnhanceParams(), seed=0), vlm).process([enhance_row(0, ["red", None])])
    assert len(vlm.calls[0]["prompts"]) == 1
    assert row["enhanced_answer"] == ["red", None] and row["enhanced_answer_improved"] == [False, False]


def test_self_enhance_on_tiny_llava_writes_every_row_whatever_the_batch(tiny_llava):
    rows = [{**r, "question": "What is it?", "caption": "Noise.", "answer": ["A", "B"]} for r in textured_rows()]
    stage = ready(SelfEnhance(SelfEnhanceParams(max_new_tokens=6), seed=0), tiny_llava)
    out = stage.process(rows)
    assert out == one_by_one(stage, rows)
    # a random model does not write "Improved Answer:", so SENA's rule keeps every answer
    assert [(r["enhanced_answer"], r["enhanced_answer_improved"]) for r in out] == [(["A", "B"], [False, False])] * 3
