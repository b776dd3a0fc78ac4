"""The `csr_search` stage: the tree rules on scripted scores (paper rewards and pruning, the released code's rank
fusion, worked out by hand below), then the tiny LLaVA + tiny CLIP end to end, in both modes and across batch sizes."""

import io
import math
from types import SimpleNamespace

import pytest
from PIL import Image

from prefgen.stages.base import Drop
from prefgen.stages.csr.stage import CsrSearch, CsrSearchParams, path_seed
from prefgen.stages.csr.tree import Node, SearchConfig, Sentence, is_garbage, prune, sentence_reward

HALF = math.log(0.5)  # every scripted sentence has probability 0.5: R_text = 0.5, so (1 - lam) * R_text = 0.05


def png(color=(200, 30, 30)) -> dict:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 12), color).save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": "a.png"}


def row(row_id: str, question: str = "Q", color=(200, 30, 30)) -> dict:
    return {"row_id": row_id, "image_id": f"img-{row_id}", "image": png(color), "question": question}


class ScriptedVLM:
    """``script[(question, partial answer)]`` = the candidates ``sentence_steps`` returns for that path."""

    def __init__(self, script):
        self.script, self.calls = script, []

    def encode(self, prompts):
        return [prompt.text for prompt in prompts]

    def sentence_steps(self, encoded, partials, *, rows, **options):
        self.calls.append({"partials": list(partials), **options})
        return [
            [
                SimpleNamespace(text=text, finished=finished, logprob_sum=lp, logprob_mean=lp / 2)
                for text, finished, lp in self.script[(encoded[r], partial)]
            ]
            for r, partial in zip(rows, partials)
        ]


class ScriptedClip:
    def __init__(self, cosines):
        self.cosines, self.calls = cosines, []

    def cosine(self, images, texts, keys=None):
        self.calls.append(list(keys))
        return [self.cosines[text] for text in texts]


def run(script, cosines, rows, **params):
    vlm, clip = ScriptedVLM(script), ScriptedClip(cosines)
    stage = CsrSearch(CsrSearchParams(**{"min_sentence_chars": 3, **params}), seed=1)
    stage.setup(SimpleNamespace(vlm=vlm, clip=clip))
    return stage.process(rows), vlm, clip


# ---------------------------------------------------------------------------------------------- paper mode

# Sentences of 3 characters or more are kept (min_sentence_chars=3 in `run`).
# Beam width 2 keeps the top 1 and the bottom 1 unfinished paths per level. Rewards: 0.9 * 100 cos + 0.05.
PAPER_SCRIPT = {
    ("Q", ""): [("A1.", False, HALF), ("B1.", False, HALF), ("C1.", False, HALF)],  # 27.05, 18.05, 9.05: B1 pruned
    ("Q", "A1."): [(" A2.", True, HALF), (" A3.", False, HALF), (" ab", False, HALF)],  # "ab" < 3 characters
    ("Q", "C1."): [(" C2.", True, HALF), (" the the the the the the.", False, HALF), (" C3.", False, HALF)],
    ("Q", "A1. A3."): [(" A4.", False, HALF)],  # level 3 = max_sentences: every path ends
    ("Q", "C1. C3."): [(" C4.", False, HALF), (" C5.", False, HALF)],
}
PAPER_COSINES = {
    "A1.": 0.30,
    "B1.": 0.20,
    "C1.": 0.10,
    "A2.": 0.25,
    "A3.": 0.05,
    "C2.": -0.10,
    "C3.": 0.40,
    "A4.": 0.50,
    "C4.": 0.0,
    "C5.": 0.20,
}
# Ended paths and their summed rewards:
#   A1 A2 = 27.05 + 22.55 = 49.60        C1 C2 = 9.05 + 0.05 (cos < 0 gives R_img 0) = 9.10   <- rejected
#   A1 A3 A4 = 27.05 + 4.55 + 45.05 = 76.65   <- chosen
#   C1 C3 C4 = 9.05 + 36.05 + 0.05 = 45.15      C1 C3 C5 = 9.05 + 36.05 + 18.05 = 63.15


def test_paper_mode_chooses_the_highest_and_rejects_the_lowest_summed_reward():
    [out], vlm, clip = run(
        PAPER_SCRIPT, PAPER_COSINES, [row("r1")], beam_width=2, candidates_per_step=3, max_sentences=3
    )
    assert out["csr_chosen"] == "A1. A3. A4."
    assert out["csr_rejected"] == "C1. C2."
    assert out["csr_chosen_reward"] == pytest.approx(76.65)
    assert out["csr_rejected_reward"] == pytest.approx(9.10)
    steps = out["csr_chosen_steps"]
    assert [s["text"] for s in steps] == ["A1.", "A3.", "A4."]
    assert [s["clip"] for s in steps] == pytest.approx([30.0, 5.0, 50.0])
    assert [s["clip_cosine"] for s in steps] == pytest.approx([0.30, 0.05, 0.50])
    assert [s["reward"] for s in steps] == pytest.approx([27.05, 4.55, 45.05])
    assert [s["logprob_sum"] for s in steps] == pytest.approx([HALF] * 3)
    assert [s["logprob_mean"] for s in steps] == pytest.approx([HALF / 2] * 3)
    assert out["csr_rejected_steps"][1]["clip"] == 0.0 and out["csr_rejected_steps"][1]["clip_cosine"] == -0.10
    # B1 (middle reward) was pruned and never expanded; both unfinished level-2 paths (2 <= beam width) were,
    # best first: C1 C3 (45.10) before A1 A3 (31.60)
    assert [call["partials"] for call in vlm.calls] == [[""], ["A1.", "C1."], ["C1. C3.", "A1. A3."]]
    assert all(call["strategy"] == "sample" and call["k"] == 3 for call in vlm.calls)
    # one CLIP call per level, for the kept sentences only (not "ab", not the repetition), keyed by image id
    assert [len(keys) for keys in clip.calls] == [3, 4, 3] and {k for keys in clip.calls for k in keys} == {"img-r1"}


def test_paper_mode_mean_path_reward_is_length_neutral():
    [out], _, _ = run(
        PAPER_SCRIPT,
        PAPER_COSINES,
        [row("r1")],
        beam_width=2,
        candidates_per_step=3,
        max_sentences=3,
        path_reward="mean",
    )
    assert out["csr_chosen"] == "A1. A3. A4." and out["csr_chosen_reward"] == pytest.approx(76.65 / 3)
    assert out["csr_rejected"] == "C1. C2." and out["csr_rejected_reward"] == pytest.approx(9.10 / 2)


# A longer answer whose second sentence is poorly grounded (cos -0.2) against a shorter grounded one.
PADDED_SCRIPT = {
    ("Q", ""): [("X1.", False, HALF), ("Y1.", True, HALF)],
    ("Q", "X1."): [(" X2.", True, HALF)],
}
PADDED_COSINES = {"X1.": 0.2, "Y1.": 0.2, "X2.": -0.2}


def test_centred_clip_reward_charges_a_poorly_grounded_sentence_where_the_clamp_does_not():
    options = dict(beam_width=2, candidates_per_step=2, max_sentences=2)
    [clamped], _, _ = run(PADDED_SCRIPT, PADDED_COSINES, [row("r1")], **options)
    # the paper's clamp: X2 costs nothing, so the longer path wins by its likelihood part (18.05 + 0.05 > 18.05)
    assert clamped["csr_chosen"] == "X1. X2." and clamped["csr_rejected"] == "Y1."
    [centred], _, _ = run(PADDED_SCRIPT, PADDED_COSINES, [row("r1")], clip_reward="centred", **options)
    centre = (0.2 + 0.2 - 0.2) / 3  # every sentence of the tree
    assert centred["csr_chosen"] == "Y1." and centred["csr_rejected"] == "X1. X2."
    assert centred["csr_chosen_reward"] == pytest.approx(90 * (0.2 - centre) + 0.05)
    assert centred["csr_rejected_reward"] == pytest.approx(90 * (0.2 - centre) + 90 * (-0.2 - centre) + 0.1)
    steps = centred["csr_rejected_steps"]
    assert [s["clip"] for s in steps] == pytest.approx([100 * (0.2 - centre), 100 * (-0.2 - centre)])
    assert steps[1]["reward"] < 0


def test_centred_search_prunes_with_the_threshold_of_the_sentences_so_far():
    [out], vlm, _ = run(
        PAPER_SCRIPT,
        PAPER_COSINES,
        [row("r1")],
        beam_width=2,
        candidates_per_step=3,
        max_sentences=3,
        clip_reward="centred",
    )
    # level 1's centre is 0.2: A1 9.05, B1 0.05, C1 -8.95, so B1 is pruned as in the paper's reward
    assert [call["partials"] for call in vlm.calls][:2] == [[""], ["A1.", "C1."]]
    centre = sum(PAPER_COSINES.values()) / len(PAPER_COSINES)  # all ten sentences were scored
    reward = {text: 90 * (cos - centre) + 0.05 for text, cos in PAPER_COSINES.items()}
    assert out["csr_chosen"] == "A1. A3. A4."
    assert out["csr_chosen_reward"] == pytest.approx(reward["A1."] + reward["A3."] + reward["A4."])
    assert out["csr_rejected"] == "C1. C2."
    assert out["csr_rejected_reward"] == pytest.approx(reward["C1."] + reward["C2."])


def test_rows_are_searched_together_one_model_call_per_level():
    other = {("P", partial): cands for (_, partial), cands in PAPER_SCRIPT.items()}
    outs, vlm, clip = run(
        {**PAPER_SCRIPT, **other},
        PAPER_COSINES,
        [row("r1"), row("r2", question="P")],
        beam_width=2,
        candidates_per_step=3,
        max_sentences=3,
    )
    assert [o["csr_chosen"] for o in outs] == ["A1. A3. A4."] * 2
    assert len(vlm.calls) == 3 and len(clip.calls) == 3
    assert len(vlm.calls[1]["partials"]) == 4  # two paths of each row in one call
    assert sorted(set(clip.calls[0])) == ["img-r1", "img-r2"]
    # each path samples with its own seed, from the row's seed and its candidate indices only
    assert vlm.calls[0]["seed"][0] != vlm.calls[0]["seed"][1]
    assert vlm.calls[1]["seed"][0] == path_seed(CsrSearch(CsrSearchParams(), seed=1).seed_for(row("r1")), (0,))


def test_a_candidate_that_only_ends_the_answer_ends_its_parent_path():
    script = {
        ("Q", ""): [("Good one.", False, HALF), ("Bad one.", False, HALF)],
        ("Q", "Good one."): [("", True, HALF), (" More text.", False, HALF)],
        ("Q", "Bad one."): [(" Worse text.", True, HALF)],
        ("Q", "Good one. More text."): [(" x", True, HALF)],
    }  # too short: this path never ends
    cosines = {"Good one.": 0.5, "Bad one.": 0.1, "More text.": 0.1, "Worse text.": 0.0}
    [out], _, _ = run(script, cosines, [row("r1")], beam_width=4, candidates_per_step=2, max_sentences=5)
    assert out["csr_chosen"] == "Good one." and out["csr_chosen_reward"] == pytest.approx(45.05)
    assert out["csr_rejected"] == "Bad one. Worse text."


def test_rows_without_a_finished_path_or_with_one_answer_are_dropped():
    script = {
        ("Q", ""): [("No.", True, HALF), ("Yes it is.", False, HALF)],  # "No.": shorter than 4 characters
        ("Q", "Yes it is."): [(" ttttttttttttttt", True, HALF)],
        ("P", ""): [("Only answer.", True, HALF), ("Only answer.", True, HALF)],
    }
    cosines = {"Yes it is.": 0.2, "Only answer.": 0.2}
    outs, _, _ = run(
        script,
        cosines,
        [row("r1"), row("r2", question="P"), row("r3", question=" ")],
        max_sentences=4,
        min_sentence_chars=4,
    )
    assert [o.reason for o in outs] == ["no_finished_path", "equal_answers", "missing_question"]
    assert all(isinstance(o, Drop) for o in outs)


def test_undecodable_images_are_dropped():
    bad = {**row("r1"), "image": {"bytes": b"not an image", "path": "x.png"}}
    [out], vlm, _ = run(PAPER_SCRIPT, PAPER_COSINES, [bad])
    assert isinstance(out, Drop) and out.reason == "undecodable_image" and not vlm.calls


# ---------------------------------------------------------------------------------------------- tree rules


def nodes(scores):
    return [Node(Sentence(f"s{i}.", False, 0.0, 0.0), Node(), i, score=s) for i, s in enumerate(scores)]


def test_paper_pruning_keeps_the_top_ceil_and_bottom_floor_half():
    found = nodes([5, 1, 9, 3, 7, 2])  # ranked: 9 7 5 3 2 1
    assert [n.score for n in prune(found, SearchConfig(beam_width=4))] == [9, 7, 2, 1]
    assert [n.score for n in prune(found, SearchConfig(beam_width=5))] == [9, 7, 5, 2, 1]
    assert [n.score for n in prune(found, SearchConfig(beam_width=1))] == [9]
    assert [n.score for n in prune(found, SearchConfig(beam_width=6))] == [9, 7, 5, 3, 2, 1]


def test_reference_pruning_is_the_released_slice():
    found = nodes([5, 1, 9, 3, 7, 2])
    reference = dict(mode="reference")
    assert [n.score for n in prune(found, SearchConfig(beam_width=5, **reference))] == [9, 2, 1]  # top 1, bottom 2
    assert [n.score for n in prune(found, SearchConfig(beam_width=4, **reference))] == [9, 2, 1]
    assert [n.score for n in prune(found, SearchConfig(beam_width=3, **reference))] == [1]  # new[:0] + new[-1:]
    assert [n.score for n in prune(found[:4], SearchConfig(beam_width=5, **reference))] == [9, 5, 3, 1]  # < w: all


def test_garbage_filter_and_sentence_reward():
    assert is_garbage("a dog dog dog dog dog dog") and not is_garbage("a dog dog dog dog dog")
    assert is_garbage("so ttttttttttt") and is_garbage(", , , , , , , , , , , ,") and is_garbage("a\n" * 6)
    assert not is_garbage("A red bus is parked next to a tall building.")
    assert sentence_reward(0.3, HALF, 0.9) == pytest.approx(27.05)
    assert sentence_reward(-0.3, 0.0, 0.9) == pytest.approx(0.1)


# ---------------------------------------------------------------------------------------------- reference mode

# Width 5 with fewer than 5 new nodes per level keeps them all; depth 2 ends every path at level 2.
REFERENCE_SCRIPT = {
    ("Q", ""): [("X is.", False, -1.0), ("Y is.", False, -2.0), ("Z is.", True, -3.0)],  # LM = logprob_sum / 2
    ("Q", "X is."): [(" X1 is.", False, -0.4), (" X2 is.", False, -0.8)],
    ("Q", "Y is."): [(" Y1 is.", False, -0.2)],
}
REFERENCE_COSINES = {"X is.": 0.2, "Y is.": 0.3, "Z is.": 0.1, "X1 is.": 0.1, "X2 is.": 0.4, "Y1 is.": 0.3}
# Sibling ranks (best 1/N), fused as 0.1 * lm_rank + 0.9 * clip_rank:
#   level 1 (N=3): X lm 1/3 clip 2/3 -> 0.0333 + 0.6 = 0.6333; Y lm 2/3 clip 1/3 -> 0.3667; Z lm 1 clip 1 -> 1.0
#   X's children (N=2): X1 lm 1/2 clip 1 -> 0.95; X2 lm 1 clip 1/2 -> 0.55;  Y's only child Y1: 1.0
# Keys (cumulative / (sentences + 1)):
#   Z = 1.0 / 2 = 0.5;  X X1 = (0.6333 + 0.95) / 3 = 0.5278 <- rejected (max)
#   X X2 = (0.6333 + 0.55) / 3 = 0.3944 <- chosen (min);  Y Y1 = (0.3667 + 1.0) / 3 = 0.4556


def test_reference_mode_reproduces_the_released_rank_fusion():
    [out], vlm, _ = run(
        REFERENCE_SCRIPT,
        REFERENCE_COSINES,
        [row("r1")],
        mode="reference",
        beam_width=5,
        candidates_per_step=3,
        max_sentences=2,
    )
    assert out["csr_chosen"] == "X is. X2 is."
    assert out["csr_rejected"] == "X is. X1 is."
    assert out["csr_chosen_reward"] == pytest.approx(-(0.1 / 3 + 0.6 + 0.55) / 3)  # -0.3944
    assert out["csr_rejected_reward"] == pytest.approx(-(0.1 / 3 + 0.6 + 0.95) / 3)  # -0.5278
    chosen = out["csr_chosen_steps"]
    assert [s["lm_rank"] for s in chosen] == pytest.approx([1 / 3, 1.0])
    assert [s["clip_rank"] for s in chosen] == pytest.approx([2 / 3, 0.5])
    assert [s["reward"] for s in chosen] == pytest.approx([-0.6333333, -0.55])
    assert all(call["strategy"] == "diverse" and call["diversity_penalty"] == 3.0 for call in vlm.calls)
    assert [call["partials"] for call in vlm.calls] == [[""], ["X is.", "Y is."]]  # Z finished: not expanded


def test_reference_mode_falls_back_to_every_leaf_when_no_path_ended():
    script = {
        ("Q", ""): [("First one.", False, -1.0), ("Second one.", False, -2.0)],
        ("Q", "First one."): [(" aaaaaaaaaaaaa", False, -1.0)],  # garbage: the search dies at level 2
        ("Q", "Second one."): [(" bb", False, -1.0)],
    }
    [out], _, _ = run(script, {"First one.": 0.1, "Second one.": 0.3}, [row("r1")], mode="reference", max_sentences=3)
    # ranks: First lm 1/2 clip 1 -> 0.95; Second lm 1 clip 1/2 -> 0.55; keys /2
    assert (out["csr_chosen"], out["csr_rejected"]) == ("Second one.", "First one.")
    assert (out["csr_chosen_reward"], out["csr_rejected_reward"]) == pytest.approx((-0.275, -0.475))


# ---------------------------------------------------------------------------------------------- tiny models

TINY = dict(beam_width=2, candidates_per_step=2, max_sentences=2, max_tokens_per_sentence=6, min_sentence_chars=1)
COLORS = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]


def tiny_stage(tiny_llava, tiny_clip, **params) -> CsrSearch:
    stage = CsrSearch(CsrSearchParams(**{**TINY, **params}), seed=7)
    stage.setup(SimpleNamespace(vlm=tiny_llava, clip=tiny_clip))
    return stage


def tiny_rows():
    questions = ["Describe the image.", "What is in this picture?", "Describe it in detail."]
    return [row(f"t{i}", question=q, color=c) for i, (q, c) in enumerate(zip(questions, COLORS))]


def comparable(out):
    if isinstance(out, Drop):
        return ("drop", out.reason)
    return {k: v for k, v in out.items() if k.startswith("csr_")}


@pytest.mark.parametrize("mode", ["paper", "reference"])
def test_tiny_models_end_to_end_and_independent_of_the_batch(tiny_llava, tiny_clip, mode):
    stage = tiny_stage(tiny_llava, tiny_clip, mode=mode)
    together = stage.process(tiny_rows())
    alone = [stage.process([r])[0] for r in tiny_rows()]
    kept = [out for out in together if not isinstance(out, Drop)]
    assert kept, [out.reason for out in together]
    for out in kept:
        assert set(CsrSearchParams.writes) <= set(out)
        assert out["csr_chosen"] and out["csr_rejected"] and out["csr_chosen"] != out["csr_rejected"]
        assert out["csr_chosen_reward"] >= out["csr_rejected_reward"]
        for steps, answer in (
            (out["csr_chosen_steps"], out["csr_chosen"]),
            (out["csr_rejected_steps"], out["csr_rejected"]),
        ):
            assert 1 <= len(steps) <= 2  # a new sentence need not start with a space: compare without any
            assert "".join("".join(s["text"].split()) for s in steps) == "".join(answer.split())
            assert {"text", "clip_cosine", "clip", "logprob_sum", "logprob_mean", "reward"} <= set(steps[0])
            assert all(s["clip"] == max(100 * s["clip_cosine"], 0) for s in steps)
    for a, b in zip(together, alone):
        a, b = comparable(a), comparable(b)
        if isinstance(a, tuple):
            assert a == b
            continue
        # texts are identical; scores agree to float32 noise (padding and batched matmuls: about 1e-7 relative)
        assert {k: a[k] for k in ("csr_chosen", "csr_rejected")} == {k: b[k] for k in ("csr_chosen", "csr_rejected")}
        assert a["csr_chosen_reward"] == pytest.approx(b["csr_chosen_reward"], rel=1e-5, abs=1e-5)
        assert a["csr_rejected_reward"] == pytest.approx(b["csr_rejected_reward"], rel=1e-5, abs=1e-5)
        for side in ("csr_chosen_steps", "csr_rejected_steps"):
            assert [s["text"] for s in a[side]] == [s["text"] for s in b[side]]
            for x, y in zip(a[side], b[side]):
                assert {k: v for k, v in x.items() if k != "text"} == pytest.approx(
                    {k: v for k, v in y.items() if k != "text"}, rel=1e-5, abs=1e-5
                )
