"""The vLLM engine: the same three calls as the transformers engine (``models/hf/vlm.py``), served by vLLM in this
process (continuous batching, paged attention, automatic prefix caching).

- Prompts are rendered by the model's own processor and chat template and tokenized here, exactly as the
  transformers engine does; vLLM gets token ids plus the images and expands the image placeholders itself. A
  partial answer or a continuation is appended as ids, so the prompt / answer boundary is the same token in both.
- Every sample is its own request with its own seed (``tokens.sample_seeds``: the request's seed and the sample's
  index), so a row's samples do not depend on the batch, the number of samples or the order of requests.
- Where a row ends is decided by prefgen, not by vLLM: the tokens vLLM returns are pushed through the same
  ``TextRow`` the transformers loop uses (stop strings, the sentence-end rule of ``sentences.py``, the budget).
  vLLM is only asked to pause at places a sentence *could* end (``SENTENCE_TRIGGERS``); where prefgen's rule
  says it did not ("Dr. ", "3.5"), the row continues from the tokens so far as a new request, which prefix
  caching makes cheap.
- Log-probs are vLLM's raw ones (``logprobs_mode`` "raw_logprobs": before temperature, top-p or the placeholder
  ban), the same unprocessed distribution the transformers engine reports. Log-probs of given continuations come
  from ``prompt_logprobs`` over prompt + continuation.
- CSR's "diverse" group search has no vLLM counterpart: ``sentence_steps`` refuses it, and ``prefgen validate``
  refuses such a recipe before anything loads (``models/vllm/support.py``).
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from prefgen.core.errors import PrefgenError
from prefgen.models.candidates import CONTEXT_TOKENS, Candidate, ContinuationLogprobs, DecodeSettings, TextRow
from prefgen.models.config import VLMConfig
from prefgen.models.images import MAX_PIXELS, prepare_image
from prefgen.models.loading import model_source, not_available_offline
from prefgen.models.prompts import Prompt, as_prompts, encode_continuation, render
from prefgen.models.tokens import check_budget, end_token_ids, placeholder_token_ids, sample_seeds
from prefgen.models.vllm.layout import vllm_ready_folder
from prefgen.models.vllm.prompts import RenderedPrompts
from prefgen.models.vllm.support import start_engine, start_failure, vllm_problems

log = logging.getLogger("prefgen.models")
# Text after which a sentence may have ended: a terminator (maybe closed by a quote or bracket) and whitespace, a
# line break, a CJK full stop. vLLM pauses there; prefgen's rule decides (see the module docstring).
_CLOSERS = ("", '"', "'", ")", "”", "’", "]")
SENTENCE_TRIGGERS = tuple(
    [t + c + w for t in (".", "!", "?", "…") for c in _CLOSERS for w in (" ", "\n")] + ["\n", "。", "！", "？"]
)
PLACEHOLDER_BIAS = -100.0  # vLLM's strongest logit bias: image placeholders are never chosen


@dataclass
class _Request:
    """One sample being generated: its prompt (+ answer so far) ids, images, seed and what it produced so far."""

    prompt_ids: list[int]
    images: tuple[list, list[str]]  # the images and their content keys
    row: TextRow
    seed: int | None
    attempts: int = 0
    extra: list[int] = field(default_factory=list)  # tokens of earlier attempts, appended to the prompt


class VllmVLM:
    """A vision-language model served by vLLM. Build it with ``VllmVLM.load`` (a recipe's ``VLMConfig`` with
    ``engine: vllm``); ``close()`` stops the engine."""

    engine = "vllm"

    def __init__(self, llm, processor, name: str, config: VLMConfig, start_seconds: float = 0.0):
        self.llm, self.processor, self.name, self.config = llm, processor, name, config
        #: Wall time spent inside vLLM: starting the engine, and in its generate calls (``bench/engines.py``).
        self.seconds = {"start": start_seconds, "engine": 0.0}
        self.tokenizer = processor.tokenizer
        # what the token helpers read of a model: its config and generation config
        hf_config = llm.llm_engine.model_config.hf_config
        model = SimpleNamespace(config=hf_config, generation_config=_generation_config(name))
        self.eos_ids = end_token_ids(model, self.tokenizer)
        self.placeholder_ids = placeholder_token_ids(model, processor)

    @classmethod
    def load(cls, config: VLMConfig | None = None, *, base_dir: str | Path | None = None, **fields) -> VllmVLM:
        fields = {key: str(value) if isinstance(value, Path) else value for key, value in fields.items()}
        config = config if config is not None else VLMConfig(engine="vllm", **fields)
        source, local = model_source(config.id, config.path, base_dir)
        revision = None if local else config.revision
        problems = vllm_problems(source, revision, config)
        if problems:
            raise PrefgenError(f"the vLLM engine cannot run {source}: {problems[0]}")
        try:
            from transformers import AutoProcessor

            processor = AutoProcessor.from_pretrained(
                source, revision=revision, trust_remote_code=config.trust_remote_code
            )
        except OSError as exc:
            if local:
                raise PrefgenError(f"cannot load the model in {source}: {str(exc).splitlines()[0]}") from exc
            raise not_available_offline(source, revision) from exc
        folder = vllm_ready_folder(source) if local else source
        key = (folder, _folder_state(folder), revision, config.model_dump_json(exclude={"id", "path"}))
        if _SHARED.get("key") == key and _SHARED["engine"].llm is not None:
            return _SHARED["engine"]  # the same model, same settings: the engine this process already started
        if _SHARED.get("engine") is not None:
            _SHARED.pop("engine").close()  # one engine per process: a new model (the next round's) replaces it
        started = time.perf_counter()
        llm = start_engine(folder, config, revision, tokenizer=source)
        engine = cls(llm, processor, source, config, time.perf_counter() - started)
        _SHARED.update(key=key, engine=engine)
        atexit.register(engine.close)  # before vLLM's own finalizers, while the process can still log
        return engine

    def close(self) -> None:
        """Stop vLLM's engine processes now (they also stop when this object is collected or the process exits)."""
        llm, self.llm = self.llm, None
        if llm is None:
            return
        engine = getattr(llm, "llm_engine", None)
        shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
        if shutdown is not None:
            quiet = logging.getLogger("vllm")
            level, quiet.level = quiet.level, logging.ERROR  # its "force killing" notes are not the user's business
            try:
                shutdown()
            finally:
                quiet.level = level

    # ------------------------------------------------------------------------------------------------ prompts

    def encode(self, prompts: Sequence[Prompt] | Prompt) -> RenderedPrompts:
        prompts = as_prompts(prompts)
        if not prompts:
            raise PrefgenError("no prompts to encode")
        return self._rendered(prompts)

    def _rendered(self, prompts) -> RenderedPrompts:
        if isinstance(prompts, RenderedPrompts):
            return prompts
        prompts = as_prompts(prompts)
        bos = getattr(self.tokenizer, "bos_token", None)
        texts = [render(self.processor, prompt) for prompt in prompts]
        add_special = not (bos and all(text.startswith(bos) for text in texts))  # as encode_prompts decides
        ids = [list(self.tokenizer(text, add_special_tokens=add_special)["input_ids"]) for text in texts]
        images = [[prepare_image(image, MAX_PIXELS) for image in prompt.images] for prompt in prompts]
        return RenderedPrompts(prompts, ids, images)

    # ------------------------------------------------------------------------------------------------ generation

    def generate(
        self,
        prompts: Sequence[Prompt] | Prompt,
        *,
        n: int = 1,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        stop: Sequence[str] = (),
        seed: int | Sequence[int] | None = 0,
    ) -> list[list[Candidate]]:
        """``n`` answers per prompt; greedy when ``temperature`` is 0, else sampled (see ``VLM.generate``)."""
        rendered = self._rendered(prompts)
        check_budget(max_new_tokens, temperature, top_p, n)
        if temperature == 0 and n > 1:
            raise ValueError("greedy decoding gives n identical answers; sample (temperature > 0) or use n=1")
        settings = DecodeSettings(
            max_new_tokens,
            "greedy" if temperature == 0 else "sample",
            temperature or 1.0,
            top_p,
            stop_strings=tuple(stop),
            banned_tokens=self.placeholder_ids,
        )
        count = len(rendered)
        seeds = sample_seeds(seed, list(range(count)), n, count) if temperature > 0 else None
        requests = [
            _Request(
                list(rendered.token_ids[i]),
                rendered.media(i),
                TextRow(self.tokenizer, [], self.eos_ids, settings),
                seeds[i * n + s] if seeds is not None else None,
            )
            for i in range(count)
            for s in range(n)
        ]
        found = self._run(requests, settings)
        return [found[i * n : (i + 1) * n] for i in range(count)]

    def sentence_steps(
        self,
        prompts: Sequence[Prompt] | RenderedPrompts,
        partial_answers: Sequence[str],
        *,
        k: int = 5,
        rows: Sequence[int] | None = None,
        max_new_tokens: int = 70,
        strategy: str = "sample",
        temperature: float = 1.0,
        top_p: float = 1.0,
        diversity_penalty: float = 3.0,
        seed: int | Sequence[int] | None = 0,
    ) -> list[list[Candidate]]:
        """k sampled candidate next sentences for each partial answer (see ``VLM.sentence_steps``); the prompt and
        the answer so far are shared across candidates and steps through vLLM's prefix cache."""
        if strategy == "diverse":
            raise PrefgenError(
                "the vLLM engine has no diverse group search (CSR's reference mode); use mode: paper, or engine: hf"
            )
        if strategy != "sample":
            raise ValueError(f"strategy must be 'sample' or 'diverse', not {strategy!r}")
        check_budget(max_new_tokens, temperature, top_p, k)
        if temperature == 0:
            raise ValueError("sampling needs temperature > 0 (strategy='diverse' is the deterministic one)")
        rendered = self._rendered(prompts)
        rows = list(range(len(partial_answers))) if rows is None else list(rows)
        if len(rows) != len(partial_answers):
            raise ValueError("give one prompt row per partial answer")
        if any(not 0 <= row < len(rendered) for row in rows):
            raise ValueError(f"prompt rows must lie in 0..{len(rendered) - 1}")
        settings = DecodeSettings(
            max_new_tokens, "sample", temperature, top_p, stop_at_sentence_end=True, banned_tokens=self.placeholder_ids
        )
        seeds = sample_seeds(seed, list(range(len(rows))), k, len(rows))
        requests = []
        for i, (row, partial) in enumerate(zip(rows, partial_answers)):
            answer = encode_continuation(self.tokenizer, partial)
            for s in range(k):
                requests.append(
                    _Request(
                        list(rendered.token_ids[row]) + answer,
                        rendered.media(row),
                        TextRow(self.tokenizer, answer[-CONTEXT_TOKENS:], self.eos_ids, settings),
                        seeds[i * k + s] if seeds is not None else None,
                    )
                )
        found = self._run(requests, settings)
        return [found[i * k : (i + 1) * k] for i in range(len(rows))]

    # ------------------------------------------------------------------------------------------------ scoring

    def logprobs(
        self,
        prompts: Sequence[Prompt] | RenderedPrompts,
        continuations: Sequence[str | Sequence[int]],
        *,
        rows: Sequence[int] | None = None,
        append_eos: bool = False,
    ) -> list[ContinuationLogprobs]:
        """Log-probs of each continuation (text, or token ids as generated) after ``prompts[rows[i]]``."""
        rendered = self._rendered(prompts)
        rows = list(range(len(continuations))) if rows is None else list(rows)
        if len(rows) != len(continuations):
            raise ValueError("give one prompt row per continuation")
        if any(not 0 <= row < len(rendered) for row in rows):
            raise ValueError(f"prompt rows must lie in 0..{len(rendered) - 1}")
        ids = [
            encode_continuation(self.tokenizer, c) if isinstance(c, str) else [int(t) for t in c]
            for c in continuations
        ]
        if append_eos:
            ids = [tokens + [self.tokenizer.eos_token_id] for tokens in ids]
        wanted = [i for i, tokens in enumerate(ids) if tokens]
        from vllm import SamplingParams

        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False)
        outputs = self._call(
            [self._prompt(rendered.token_ids[rows[i]] + ids[i], rendered.media(rows[i])) for i in wanted],
            [params] * len(wanted),
        )
        results = [ContinuationLogprobs.build((), ()) for _ in ids]
        for i, output in zip(wanted, outputs):
            tokens = ids[i]
            positions = output.prompt_logprobs[len(output.prompt_logprobs) - len(tokens) :]
            results[i] = ContinuationLogprobs.build(tokens, [pos[t].logprob for pos, t in zip(positions, tokens)])
        return results

    # ------------------------------------------------------------------------------------------------ the loop

    def _run(self, requests: list[_Request], settings: DecodeSettings) -> list[Candidate]:
        """Ask vLLM for every unfinished request, push what it returns through each row's ``TextRow``, and go again
        for the rows vLLM paused where prefgen's rule saw no end; each round adds at least one token to a row."""
        from vllm import SamplingParams

        stops = sorted(
            set(settings.stop_strings) | (set(SENTENCE_TRIGGERS) if settings.stop_at_sentence_end else set())
        )
        bias = {int(t): PLACEHOLDER_BIAS for t in settings.banned_tokens}
        pending = [r for r in requests if settings.max_new_tokens > 0]
        while pending:
            params = []
            for request in pending:
                params.append(
                    SamplingParams(
                        n=1,
                        temperature=settings.temperature if settings.strategy == "sample" else 0.0,
                        top_p=settings.top_p if settings.strategy == "sample" else 1.0,
                        max_tokens=settings.max_new_tokens - len(request.row.tokens),
                        stop=stops or None,
                        include_stop_str_in_output=True,
                        detokenize=bool(stops),  # only stop strings need vLLM's text; TextRow decodes the rest
                        logprobs=0,
                        logit_bias=bias or None,
                        seed=_attempt_seed(request.seed, request.attempts),
                    )
                )
            outputs = self._call([self._prompt(r.prompt_ids + r.extra, r.images) for r in pending], params)
            still = []
            for request, output in zip(pending, outputs):
                choice = output.outputs[0]
                tokens = list(choice.token_ids)
                for token, entry in zip(tokens, choice.logprobs or [{}] * len(tokens)):
                    request.row.push(token, entry[token].logprob if token in entry else float("nan"))
                    if request.row.done:
                        break
                if request.row.done:
                    continue
                if choice.finish_reason == "stop" and choice.stop_reason is None or not tokens:
                    request.row.finish(len(request.row.tokens), "eos")  # an end token prefgen did not list
                elif choice.finish_reason == "length":
                    request.row.finish(len(request.row.tokens), "length")
                else:
                    request.extra, request.attempts = list(request.row.tokens), request.attempts + 1
                    still.append(request)
            pending = still
        return [r.row.result() for r in requests]

    def _prompt(self, ids: list[int], images: tuple[list, list[str]]) -> dict:
        prompt: dict = {"prompt_token_ids": list(ids)}
        pictures, keys = images
        if pictures:
            one = len(pictures) == 1
            prompt["multi_modal_data"] = {"image": pictures[0] if one else list(pictures)}
            prompt["multi_modal_uuids"] = {"image": keys[0] if one else list(keys)}
        return prompt

    def _call(self, prompts: list[dict], params: list) -> list:
        if not prompts:
            return []
        if self.llm is None:
            raise PrefgenError("the vLLM engine was closed")
        started = time.perf_counter()
        try:
            return self.llm.generate(prompts, params, use_tqdm=False)
        except Exception as exc:  # the engine died or ran out of memory: one line that says what to change
            raise start_failure(exc, self.name, running=True) from exc
        finally:
            self.seconds["engine"] += time.perf_counter() - started


#: The engine this process runs: vLLM reserves its memory up front, so a process keeps one engine and reuses it
#: for every build on the same model (tests, a rounds loop's evaluation); a different model closes it first.
_SHARED: dict = {}


def _folder_state(folder: str) -> tuple:
    path = Path(folder)
    if not path.is_dir():
        return ()
    return tuple(sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in path.iterdir() if f.is_file()))


def _attempt_seed(seed: int | None, attempt: int) -> int | None:
    """The seed of a row's ``attempt``-th request: its own seed first, then one derived from it."""
    if seed is None or attempt == 0:
        return seed
    return int.from_bytes(hashlib.sha256(f"{seed}:{attempt}".encode()).digest()[:8], "little") >> 2


def _generation_config(source: str):
    try:
        from transformers import GenerationConfig

        return GenerationConfig.from_pretrained(source)
    except OSError:
        return None
