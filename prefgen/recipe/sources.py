"""Where a build's images come from: a folder, a Hugging Face dataset, or a manifest file."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal, Union

from pydantic import Field, field_validator, model_validator

from prefgen.core.config import StrictModel

#: The columns every source writes; a source with a question column adds ``question``, then its extra columns.
SOURCE_COLUMNS = ("image_id", "image", "image_path")


def source_columns(question_column: str | None = None, extra_columns: Sequence[str] = ()) -> list[str]:
    """The columns a source writes (the one definition: validation, the engine and the declarations use it)."""
    return [*SOURCE_COLUMNS, *(["question"] if question_column else []), *extra_columns]


#: Keys added after stores were first built: left out of fingerprints while unset, so that the recipes written
#: before them keep their fingerprints (and their builds their cache).
_LATER_KEYS = ("question",)


class _SourceBase(StrictModel):
    def output_columns(self) -> list[str]:
        question = getattr(self, "question_column", None) or getattr(self, "question", None)
        return source_columns(question, getattr(self, "extra_columns", ()))

    def identity(self) -> dict:
        """The source as fingerprints see it: its settings, without the later keys left unset."""
        data = self.model_dump(mode="json")
        return {k: v for k, v in data.items() if not (k in _LATER_KEYS and v is None)}


class ImageFolderSource(_SourceBase):
    """Every image file under a folder, in sorted path order; ``image_id`` is a hash of the file's content."""

    type: Literal["image_folder"]
    path: str = Field(..., description="Folder of images, relative to the recipe file or absolute.")
    recursive: bool = Field(True, description="Also read sub-folders.")
    extensions: list[str] = Field(
        [".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"],
        description="File name endings taken as images (case-insensitive).",
    )
    question: str | None = Field(
        None,
        min_length=1,
        description="A prompt asked of every image, written to the `question` column, for the stages that read one "
        "(csr_search, answer), e.g. `Describe this image in detail.`",
    )


class HFDatasetSource(_SourceBase):
    """A Hugging Face dataset: a local folder (``path``) or a Hub ``id`` pinned to a ``revision``."""

    type: Literal["hf_dataset"]
    path: str | None = Field(None, description="Local dataset folder or data files.")
    id: str | None = Field(None, description="Hub dataset id, e.g. `user/name`.")
    revision: str | None = Field(None, description="Commit sha or tag of the Hub dataset (required with `id`).")
    config: str | None = Field(None, description="Dataset config name.")
    split: str = Field("train", description="Split to read.")
    image_column: str = Field("image", description="Column holding the image.")
    question_column: str | None = Field(None, description="Column holding a question per image, if any.")
    extra_columns: list[str] = Field([], description="Columns copied to every row as they are (e.g. answers to rank).")

    @model_validator(mode="after")
    def _one_location(self):
        if (self.path is None) == (self.id is None):
            raise ValueError("give exactly one of `path` (local) or `id` (Hub)")
        if self.id is not None and not self.revision:
            raise ValueError("a Hub dataset needs a pinned `revision` (commit sha or tag) so builds are reproducible")
        return self


class ManifestSource(_SourceBase):
    """A parquet or jsonl file listing image paths (relative to the file), optionally with questions."""

    type: Literal["manifest"]
    path: str = Field(..., description="A .parquet or .jsonl file.")
    image_column: str = Field("image", description="Column holding the image path.")
    question_column: str | None = Field(None, description="Column holding a question per image, if any.")
    extra_columns: list[str] = Field([], description="Columns copied to every row as they are (e.g. answers to rank).")

    @field_validator("path")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if not value.endswith((".parquet", ".jsonl")):
            raise ValueError("a manifest must be a .parquet or .jsonl file")
        return value


Source = Annotated[Union[ImageFolderSource, HFDatasetSource, ManifestSource], Field(discriminator="type")]


class Limits(StrictModel):
    max_images: int | None = Field(None, ge=1, description="Read at most this many source images.")
    sampling: Literal["first", "random"] = Field("first", description="Which images `max_images` keeps (seeded).")
    max_error_rate: float = Field(0.05, ge=0.0, le=1.0, description="Stop when this share of rows fails in a stage.")
