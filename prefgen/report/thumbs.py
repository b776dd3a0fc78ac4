"""Small JPEG thumbnails for the gallery, each image encoded once (keyed by ``image_id``) and, for pairs whose
rejected answer was made on a corrupted image, that corrupted image recreated from the row's ``corruption`` column
with the ``corrupt`` stage's own code (same description, same pixels), then shrunk the same way."""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image

# Thumbnail side by number of images in the file: a 10,000-pair version must stay a file browsers open quickly.
SIZES = ((2_000, 128), (6_000, 96), (15_000, 72), (25_000, 52))
SMALLEST = 44
QUALITY = 70
# Noise is what JPEG keeps worst, and a noised image needs no fine detail to be seen as one: half the bytes.
CORRUPTED_QUALITY = 45


def thumbnail_side(n_images: int) -> int:
    """Longest side of every thumbnail of a report holding ``n_images`` images."""
    return next((side for limit, side in SIZES if n_images <= limit), SMALLEST)


class Thumbnails:
    """Base64 JPEGs in one list; rows refer to them by index, so an image shared by many pairs is stored once."""

    def __init__(self, side: int = SIZES[0][1], quality: int = QUALITY):
        self.side, self.quality = side, quality
        self.data: list[str] = []
        self._index: dict[tuple, int | None] = {}
        self._decoded: tuple[Any, Image.Image | None] | None = None  # the last source image, for its corruption

    def clean(self, cell: Any, key: str | None) -> int | None:
        """Index of the thumbnail of an ``images`` cell entry ({bytes, path}); None when it cannot be decoded."""
        cache_key = ("clean", key if key is not None else _bytes_key(cell))
        if cache_key not in self._index:
            image = self._decode(cell)
            self._index[cache_key] = self._add(image) if image is not None else None
        return self._index[cache_key]

    def corrupted(self, cell: Any, key: str | None, corruption: str) -> tuple[int | None, str | None]:
        """(index of the corrupted image's thumbnail, None) or (None, why it could not be recreated)."""
        from prefgen.stages.corrupt.pixels import apply_corruption

        cache_key = ("corrupted", key if key is not None else _bytes_key(cell), corruption)
        if cache_key in self._index:
            return self._index[cache_key], None
        image = self._decode(cell)
        if image is None:
            return None, "the source image cannot be decoded"
        try:
            corrupted = apply_corruption(image, corruption)
        except (ValueError, TypeError) as exc:
            return None, f"the corruption cannot be recreated: {str(exc).splitlines()[0]}"
        self._index[cache_key] = self._add(corrupted, CORRUPTED_QUALITY)
        return self._index[cache_key], None

    def _decode(self, cell: Any) -> Image.Image | None:
        if self._decoded is not None and self._decoded[0] is cell:
            return self._decoded[1]
        data = cell.get("bytes") if isinstance(cell, dict) else None
        image = None
        if data:
            try:
                image = Image.open(io.BytesIO(data))
                image.load()
            except (OSError, ValueError, Image.DecompressionBombError):
                image = None
        self._decoded = (cell, image)
        return image

    def _add(self, image: Image.Image, quality: int | None = None) -> int:
        from prefgen.models.images import prepare_image

        small = prepare_image(image)  # upright RGB, as the model saw it
        if small is image:  # thumbnail() shrinks in place, and the decoded source is kept for its corruption
            small = image.copy()
        small.thumbnail((self.side, self.side), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        small.save(buffer, format="JPEG", quality=quality or self.quality, optimize=True)
        self.data.append(base64.b64encode(buffer.getvalue()).decode("ascii"))
        return len(self.data) - 1


def _bytes_key(cell: Any) -> int:
    data = cell.get("bytes") if isinstance(cell, dict) else None
    return hash(data)
