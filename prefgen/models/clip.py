"""CLIP image-text relevance over open_clip, with an image-embedding cache that lives as long as the scorer.

CSR scores every candidate sentence against its image, so one image is scored against dozens of texts across a
search: its embedding is computed once (keyed by the caller's image id, or by a hash of the pixels) and reused.
Texts are truncated to the model's context length (77 tokens for most CLIPs) by open_clip's tokenizer; CSR's
released code did not truncate and could fail on long sentences.

Each score carries the raw cosine, ``100 * cos`` (what CSR's released code ranks siblings by: CLIP's
``logits_per_image`` with OpenAI CLIP's logit scale of 100) and the paper's calibrated ``max(100 * cos, 0)``.
"""

from __future__ import annotations

import hashlib
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from prefgen.core.config import resolve_path
from prefgen.core.errors import PrefgenError
from prefgen.models.config import ClipConfig
from prefgen.models.images import prepare_image
from prefgen.models.loading import not_available_offline, resolve_device

CLIP_SCALE = 100.0  # the paper's R_I = max(100 cos, 0); also OpenAI CLIP's (clamped) logit scale


@dataclass(frozen=True)
class ClipScore:
    cosine: float  # in [-1, 1]
    scaled: float  # 100 * cosine: CSR's released code ranks by this
    calibrated: float  # max(100 * cosine, 0): the paper's image reward

    @classmethod
    def from_cosine(cls, cosine: float) -> ClipScore:
        return cls(cosine, CLIP_SCALE * cosine, max(CLIP_SCALE * cosine, 0.0))


class ClipScorer:
    """Scores (image, text) pairs with an open_clip model. Build it with ``ClipScorer.load``."""

    def __init__(
        self, model, preprocess, tokenizer, name: str = "", batch_size: int = 64, cache_size: int | None = 100_000
    ):
        self.model = model.eval()
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.name = name
        self.batch_size = batch_size
        self.cache_size = cache_size  # images kept; None = unbounded, 0 = no cache
        self.context_length = int(getattr(model, "context_length", None) or tokenizer.context_length)
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._object_keys: dict[int, tuple[weakref.ref, str]] = {}  # live image object -> its pixel hash
        self.hits = self.misses = 0

    @classmethod
    def load(cls, config=None, *, base_dir: str | Path | None = None, **fields) -> ClipScorer:
        """Load from a recipe ``ClipConfig``, or from its fields: ``ClipScorer.load(model=..., path=...)``."""
        import open_clip

        fields = {key: str(value) if isinstance(value, Path) else value for key, value in fields.items()}
        config = config if config is not None else ClipConfig(**fields)
        name, pretrained = _open_clip_source(config, base_dir)
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=pretrained)
        except RuntimeError as exc:
            if pretrained and not Path(pretrained).exists() and "download" in str(exc).lower():
                hub = (open_clip.get_pretrained_cfg(name, pretrained) or {}).get("hf_hub", "").rstrip("/")
                raise not_available_offline(hub or f"{name}/{pretrained}", None, "CLIP model") from exc
            raise PrefgenError(f"cannot load CLIP model {name!r}: {str(exc).splitlines()[0]}") from exc
        except (OSError, ValueError) as exc:
            raise PrefgenError(f"cannot load CLIP model {name!r}: {str(exc).splitlines()[0]}") from exc
        model.to(resolve_device(config.device))
        return cls(model, preprocess, open_clip.get_tokenizer(name), name=name)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # ------------------------------------------------------------------------------------------------ embeddings

    def image_embeddings(self, images: Sequence[Image.Image], keys: Sequence[str] | None = None) -> torch.Tensor:
        """Unit-norm embeddings (N, D) on the CPU; cached by ``keys`` (e.g. image ids) or by a hash of the pixels."""
        if keys is not None and len(keys) != len(images):
            raise ValueError("give one key per image")
        if not images:
            return torch.empty(0, 0)
        if self.cache_size == 0:  # no cache: every image is encoded, as a naive scorer would
            return torch.stack(self._encode_images(list(images)))
        keys = list(keys) if keys is not None else [self._pixel_key(image) for image in images]
        missing = {key: image for key, image in zip(keys, images) if key not in self._cache}
        self.misses += len(missing)
        self.hits += len(keys) - len(missing)
        fresh = dict(zip(missing, self._encode_images(list(missing.values())))) if missing else {}
        result = torch.stack([fresh[key] if key in fresh else self._cache[key] for key in keys])
        self._remember(fresh)
        return result

    def text_embeddings(self, texts: Sequence[str]) -> torch.Tensor:
        """Unit-norm embeddings (M, D) on the CPU, texts truncated to the model's context length."""
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                tokens = self.tokenizer(
                    list(texts[start : start + self.batch_size]), context_length=self.context_length
                )
                chunks.append(
                    torch.nn.functional.normalize(self.model.encode_text(tokens.to(self.device)).float(), dim=-1).cpu()
                )
        return torch.cat(chunks) if chunks else torch.empty(0, 0)

    # ------------------------------------------------------------------------------------------------ scores

    def cosine(
        self, images: Sequence[Image.Image], texts: Sequence[str], keys: Sequence[str] | None = None
    ) -> list[float]:
        """Cosine similarity of ``images[i]`` with ``texts[i]`` for every i (repeat an image to score many texts)."""
        if len(images) != len(texts):
            raise ValueError("give one text per image")
        if not texts:
            return []
        image_emb = self.image_embeddings(images, keys)
        text_emb = self.text_embeddings(texts)
        return (image_emb * text_emb).sum(dim=-1).tolist()

    def score(
        self, images: Sequence[Image.Image], texts: Sequence[str], keys: Sequence[str] | None = None
    ) -> list[ClipScore]:
        """``ClipScore`` (cosine, 100 cos, max(100 cos, 0)) of each (image, text) pair."""
        return [ClipScore.from_cosine(c) for c in self.cosine(images, texts, keys)]

    def clear_cache(self) -> None:
        self._cache.clear()
        self._object_keys.clear()
        self.hits = self.misses = 0

    # ------------------------------------------------------------------------------------------------ internals

    def _encode_images(self, images: list[Image.Image]) -> list[torch.Tensor]:
        out = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                chunk = images[start : start + self.batch_size]
                batch = torch.stack([self.preprocess(prepare_image(image)) for image in chunk])
                emb = self.model.encode_image(batch.to(self.device))
                out.extend(torch.nn.functional.normalize(emb.float(), dim=-1).cpu())
        return out

    def _pixel_key(self, image: Image.Image) -> str:
        """A hash of the pixels, computed once per live image object (images are not edited in place here)."""
        known = self._object_keys.get(id(image))
        if known is not None and known[0]() is image:
            return known[1]
        digest = hashlib.blake2b(image.tobytes(), digest_size=16)
        digest.update(f"{image.mode}{image.size}".encode())
        key = "px:" + digest.hexdigest()
        object_id, forget = id(image), self._object_keys.pop
        self._object_keys[object_id] = (weakref.ref(image, lambda _ref: forget(object_id, None)), key)
        return key

    def _remember(self, fresh: dict[str, torch.Tensor]) -> None:
        if self.cache_size == 0:
            return
        self._cache.update(fresh)
        while self.cache_size is not None and len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)


def _open_clip_source(config, base_dir) -> tuple[str, str | None]:
    """(model name for open_clip, pretrained tag or checkpoint file); a folder becomes open_clip's ``local-dir:``."""
    if config.path is None:
        _check_known(config.model, config.pretrained)
        return config.model, config.pretrained
    path = resolve_path(config.path, base_dir)
    if path.is_dir():
        if not (path / "open_clip_config.json").is_file():
            raise PrefgenError(f"CLIP folder {path} has no open_clip_config.json (open_clip's local-dir layout)")
        return f"local-dir:{path}", None
    if not path.is_file():
        raise PrefgenError(f"CLIP checkpoint {path} does not exist")
    _check_known(config.model, None)
    return config.model, str(path)


def _check_known(model: str, tag: str | None) -> None:
    """Fail in one line on a misspelt architecture or tag, before open_clip logs and lists everything it knows."""
    import difflib

    import open_clip

    models = open_clip.list_models()
    if model not in models:
        close = difflib.get_close_matches(model, models, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise PrefgenError(f"unknown open_clip model {model!r}{hint}; open_clip.list_models() lists them all")
    tags = open_clip.list_pretrained_tags_by_model(model)
    if tag is not None and tag not in tags:
        shown = ", ".join(tags[:6]) + (", ..." if len(tags) > 6 else "")
        raise PrefgenError(f"open_clip model {model!r} has no pretrained tag {tag!r}; known tags: {shown or 'none'}")
