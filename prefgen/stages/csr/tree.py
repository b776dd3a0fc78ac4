"""CSR's sentence-level search tree and its selection rules, with no model in sight: the stage (``csr_search``)
hands in two callbacks, one that proposes candidate sentences for many nodes at once (the VLM) and one that scores
many sentences against their images at once (CLIP), so everything here can be tested on scripted scores.

Two modes (see ``SearchConfig``):

- ``paper``: each sentence earns ``R = lam * max(100 cos, 0) + (1 - lam) * exp(logprob_sum)`` (the paper's
  calibrated reward, R_T being the sentence's probability); a path's reward is the sum (or mean) of its sentences'
  rewards; after each level the top ceil(w/2) and bottom floor(w/2) unfinished paths by path reward go on.
  Chosen = the ended path with the highest reward, rejected = the lowest.
  With ``clip_reward="centred"`` the image part is ``100 (cos - c)`` instead, ``c`` the mean cosine of every
  sentence the tree has proposed for that image (so far while searching; the whole tree's when choosing): a
  sentence less grounded than the model's usual one costs reward, so a path's sum neither grows with length (the
  clamp at zero makes an absent object's sentence free) nor rewards saying less (the mean's bias), and the
  threshold is calibrated on the image itself, with no label.
- ``reference`` (CSR's released code, ``sample.py`` / ``score.py`` / ``construct.py``): the search ranks by the
  cumulative LM score only and keeps ``new[:w//2 - 1] + new[-(w//2):]``; once the tree is built every node gets its
  rank among its siblings by LM score and by CLIP score, ``(index + 1) / N``; a path accumulates
  ``(1 - lam) * rank + lam * clip_rank`` and its key is that sum over (sentences + 1); chosen = the lowest key.

In both modes a path *ends* when a sentence finishes the answer (EOS), when it reaches ``max_sentences`` (as the
released code's ``max_length`` cap marks a node final), or when a candidate ends the answer without adding text
(the model chose EOS right after a sentence: the answer so far is complete). Ended paths are never pruned or
expanded, as in the released code, where final nodes never enter ``new_nodes``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

CLIP_SCALE = 100.0  # R_I = max(100 cos, 0), as ``prefgen.models.clip`` (not imported: it loads torch)

# A readable subset of CSR's ``clean_tree``: text that is degenerate rather than merely wrong.
_REPEATED_WORD = re.compile(r"\b(\w+)\b(?:\s+\1\b){5,}", re.IGNORECASE)  # the same word 6 times in a row
_REPEATED_CHAR = re.compile(r"(\S)(?:\s*\1){10}")  # the same character 11 times ("tttt", ", , , ,", "''''")
_MAX_NEWLINES = 5


@dataclass(frozen=True)
class SearchConfig:
    mode: str = "paper"  # paper | reference
    beam_width: int = 5
    max_sentences: int = 12
    lam: float = 0.9
    path_reward: str = "sum"  # paper mode: sum | mean of sentence rewards
    min_sentence_chars: int = 4
    clip_reward: str = "clamped"  # paper mode: clamped (max(100 cos, 0), the paper) | centred (100 (cos - c))


@dataclass(frozen=True)
class Sentence:
    """One candidate next sentence as the VLM gave it; ``text`` keeps its leading space (it joins the answer)."""

    text: str
    finished: bool
    logprob_sum: float
    logprob_mean: float


@dataclass(eq=False)
class Node:
    """A tree node: the root (no sentence) or one kept candidate sentence with its scores."""

    sentence: Sentence | None = None
    parent: Node | None = None
    index: int = 0  # position among the candidates proposed for the parent: with the parent's, the path's identity
    cosine: float = math.nan
    reward: float = 0.0  # paper: this sentence's calibrated reward; reference: minus its fused rank term
    score: float = 0.0  # what the search ranks by: paper, the path reward; reference, the cumulative LM score
    ended: bool = False
    children: list[Node] = field(default_factory=list)
    lm_rank: float = math.nan  # reference mode, set by ``fuse_ranks``
    clip_rank: float = math.nan
    centre: float = 0.0  # the root of a centred search: the mean cosine of the tree's sentences scored so far

    @property
    def depth(self) -> int:
        return len(self.lineage())

    def lineage(self) -> list[Node]:
        """The sentence nodes from the first sentence down to this one (empty for the root)."""
        nodes, node = [], self
        while node.parent is not None:
            nodes.append(node)
            node = node.parent
        return nodes[::-1]

    def path_id(self) -> tuple[int, ...]:
        return tuple(node.index for node in self.lineage())

    def partial(self) -> str:
        """The answer so far, exactly as generated: what the next sentence continues."""
        return "".join(node.sentence.text for node in self.lineage())

    def answer(self) -> str:
        return self.partial().strip()

    def walk(self) -> Iterator[Node]:
        """This node and its descendants, depth first, children in the order they were proposed."""
        yield self
        for child in self.children:
            yield from child.walk()


# ---------------------------------------------------------------------------------------------------- candidates


def is_garbage(text: str) -> bool:
    """Degenerate text CSR's ``clean_tree`` removes: long repetitions of a word or a character, many line breaks."""
    return bool(_REPEATED_WORD.search(text) or _REPEATED_CHAR.search(text)) or text.count("\n") > _MAX_NEWLINES


def add_children(node: Node, candidates: list[Sentence], config: SearchConfig) -> list[Node]:
    """Attach the candidates worth keeping to ``node`` and return them. A candidate that only ends the answer (EOS,
    no new text) ends ``node``'s path instead: dropping it would bias the search towards longer answers."""
    for index, candidate in enumerate(candidates):
        text = candidate.text.strip()
        if not text:
            node.ended = node.ended or (candidate.finished and node.parent is not None)
            continue
        if len(text) < config.min_sentence_chars or is_garbage(text):
            continue
        node.children.append(Node(candidate, node, index))
    return node.children


def sentence_reward(cosine: float, logprob_sum: float, lam: float, centre: float | None = None) -> float:
    """The paper's calibrated sentence reward: lam * max(100 cos, 0) + (1 - lam) * P(sentence); with a ``centre``,
    lam * 100 (cos - centre) + (1 - lam) * P(sentence), which is below zero for a poorly grounded sentence."""
    image = CLIP_SCALE * (cosine - centre) if centre is not None else max(CLIP_SCALE * cosine, 0.0)
    return lam * image + (1.0 - lam) * math.exp(logprob_sum)


def root_of(node: Node) -> Node:
    while node.parent is not None:
        node = node.parent
    return node


def score_node(node: Node, config: SearchConfig) -> None:
    """Fill in ``reward`` and ``score`` once the node's cosine (and, centred, its tree's centre) is known."""
    sentence = node.sentence
    if config.mode == "reference":
        # The released code adds HF's ``sequences_scores``: a length-normalised log-prob that, with group beam
        # search, also includes the diversity penalty. Here: the unpenalised mean token log-prob.
        node.score = node.parent.score + sentence.logprob_mean
        return
    centre = root_of(node).centre if config.clip_reward == "centred" else None
    node.reward = sentence_reward(node.cosine, sentence.logprob_sum, config.lam, centre)
    rewards = [n.reward for n in node.lineage()]
    node.score = math.fsum(rewards) / (len(rewards) if config.path_reward == "mean" else 1)


def centred(config: SearchConfig) -> bool:
    return config.mode == "paper" and config.clip_reward == "centred"


def centre_tree(root: Node, config: SearchConfig) -> None:
    """Centred search: set the root's centre to the mean cosine of every scored sentence of the tree, and score
    every node again with it (a path's reward is then measured against the same threshold as every other's)."""
    nodes = [node for node in root.walk() if node.parent is not None and not math.isnan(node.cosine)]
    if not nodes:
        return
    root.centre = math.fsum(node.cosine for node in nodes) / len(nodes)
    for node in nodes:  # depth first: a parent is scored again before its children
        score_node(node, config)


def prune(nodes: list[Node], config: SearchConfig) -> list[Node]:
    """The unfinished nodes of one tree (in proposal order) that the next level expands."""
    ranked = sorted(nodes, key=lambda n: n.score, reverse=True)  # stable: ties keep proposal order
    width = config.beam_width
    if config.mode == "reference":
        if len(ranked) < width:
            return ranked
        if width < 2:  # the released slice new[:-1] + new[-0:] would keep every node, twice
            return ranked[:1]
        top, bottom = width // 2 - 1, width // 2
        return ranked[:top] + ranked[-bottom:]
    if len(ranked) <= width:
        return ranked
    top, bottom = math.ceil(width / 2), width // 2
    return ranked[:top] + (ranked[-bottom:] if bottom else [])


# ---------------------------------------------------------------------------------------------------- search

Pairs = list[tuple[int, Node]]  # (tree index, node): the tree tells the callbacks which prompt and image to use


def grow(
    roots: list[Node],
    config: SearchConfig,
    propose: Callable[[Pairs], list[list[Sentence]]],
    measure: Callable[[Pairs], list[float]],
) -> None:
    """Build every tree level by level. Per level, ``propose`` is called once for every active node of every tree
    (one batched model call) and ``measure`` once for every kept new sentence (one batched CLIP call)."""
    active = [[root] for root in roots]
    for _ in range(config.max_sentences):
        expanding = [(tree, node) for tree, nodes in enumerate(active) for node in nodes]
        if not expanding:
            break
        proposals = iter(propose(expanding))
        fresh: list[list[Node]] = [[] for _ in roots]
        for tree, node in expanding:
            fresh[tree] += add_children(node, next(proposals), config)
        born = [(tree, child) for tree, children in enumerate(fresh) for child in children]
        for (_, child), cosine in zip(born, measure(born), strict=True):
            child.cosine = float(cosine)
        for tree, children in enumerate(fresh):
            if centred(config):  # this level's sentences move the threshold, then every node is scored with it
                centre_tree(roots[tree], config)
            for child in children:
                if not centred(config):
                    score_node(child, config)
                child.ended = child.sentence.finished or child.depth >= config.max_sentences
        active = [prune([c for c in children if not c.ended], config) for children in fresh]


# ---------------------------------------------------------------------------------------------------- selection


@dataclass(frozen=True)
class Choice:
    chosen: Node
    rejected: Node
    chosen_value: float  # higher is better: paper, the path reward; reference, minus the key
    rejected_value: float


def select(root: Node, config: SearchConfig) -> Choice | None:
    """The chosen and rejected paths of a grown tree, or None when no path ended (see ``select_reference`` for the
    reference mode's fallback)."""
    if config.mode == "reference":
        return select_reference(root, config.lam)
    pool = [node for node in root.walk() if node.ended and node.parent is not None]
    if not pool:
        return None
    best = max(pool, key=lambda n: n.score)  # the first of equals, in depth-first order
    worst = min(pool, key=lambda n: n.score)
    return Choice(best, worst, best.score, worst.score)


def fuse_ranks(root: Node, alpha: float) -> None:
    """The released ``Rank_Node.calculate_ranks``: ranks among siblings by LM score and by CLIP score (descending,
    best = 1/N), fused into each node's ``reward`` = -((1 - alpha) * rank + alpha * clip_rank)."""
    for node in root.walk():
        siblings = node.children
        for child, lm, clip in zip(
            siblings, sibling_ranks([c.score for c in siblings]), sibling_ranks([c.cosine for c in siblings])
        ):
            child.lm_rank, child.clip_rank = lm, clip
            child.reward = -((1.0 - alpha) * lm + alpha * clip)


def reference_key(node: Node) -> float:
    """``construct.py``: the fused ranks summed along the path over the path's length counting the root."""
    lineage = node.lineage()
    return -math.fsum(n.reward for n in lineage) / (len(lineage) + 1)


def select_reference(root: Node, alpha: float) -> Choice | None:
    """Chosen = lowest key, rejected = highest, among ended paths. The released code crashes when no path is final;
    here every leaf (pruned nodes included, as the tree keeps them) is a candidate then."""
    fuse_ranks(root, alpha)
    nodes = [node for node in root.walk() if node.parent is not None]
    pool = [n for n in nodes if n.ended] or [n for n in nodes if not n.children]
    if not pool:
        return None
    ordered = sorted(pool, key=reference_key)  # stable, as construct.py's sorted(): chosen [0], rejected [-1]
    chosen, rejected = ordered[0], ordered[-1]
    return Choice(chosen, rejected, -reference_key(chosen), -reference_key(rejected))


def sibling_ranks(scores: list[float]) -> list[float]:
    """CSR's released ranks among siblings: sort descending (stable), rank = (position + 1) / N; best is 1/N."""
    order = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)
    ranks = [0.0] * len(scores)
    for position, index in enumerate(order):
        ranks[index] = (position + 1) / len(scores)
    return ranks
