"""Bring any PIL image into the form every model here expects: upright, 8-bit RGB, of a sane size.

``PIL.Image.convert("RGB")`` alone gets several modes wrong: 16- and 32-bit grayscale are clipped instead of scaled
(a 16-bit photo comes out almost white), transparency turns black, and palette images with a transparent index
lose it. ``to_rgb`` handles those; ``prepare_image`` adds the EXIF rotation and a pixel budget.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps

# Far above what any VLM processor keeps (Qwen2-VL's default cap is about 12.8 Mpx) but small enough that decoding,
# converting and handing the image to a processor cannot exhaust memory.
MAX_PIXELS = 16_000_000
BACKGROUND = (255, 255, 255)
_ORIENTATION = 0x0112  # EXIF tag


def prepare_image(image: Image.Image, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Upright (EXIF orientation applied), RGB, and at most ``max_pixels`` pixels (aspect ratio kept)."""
    if not isinstance(image, Image.Image):
        raise TypeError(f"expected a PIL image, got {type(image).__name__}")
    if image.getexif().get(_ORIENTATION, 1) != 1:  # exif_transpose copies even upright images; skip those
        image = ImageOps.exif_transpose(image)
    image = to_rgb(image)
    width, height = image.size
    if width * height > max_pixels:
        scale = (max_pixels / (width * height)) ** 0.5
        image = image.resize(
            (max(1, int(width * scale)), max(1, int(height * scale))), Image.Resampling.BICUBIC, reducing_gap=3.0
        )
    return image


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB; transparent areas composited on white, high-bit-depth grayscale scaled (not clipped) to 8 bits."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I", "F") or mode.startswith("I;"):
        gray = _to_uint8(np.asarray(image), sixteen_bit=mode.startswith("I;16"))
        return Image.fromarray(gray, mode="L").convert("RGB")
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode == "RGBa":  # premultiplied alpha
        image, mode = image.convert("RGBA"), "RGBA"
    if mode == "La":  # premultiplied; PIL only converts it to LA
        image, mode = image.convert("LA"), "LA"
    if mode in ("RGBA", "LA", "PA") or (mode in ("L", "RGB") and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return image.convert("RGB")  # 1, L, CMYK, YCbCr, HSV, LAB: PIL converts these correctly


def _to_uint8(array: np.ndarray, sixteen_bit: bool) -> np.ndarray:
    """Scale grayscale to 0..255 by its nominal range (16-bit, 8-bit or float [0, 1]) instead of clipping."""
    is_float = array.dtype.kind == "f"
    array = array.astype(np.float64)
    top = float(array.max()) if array.size else 0.0
    if sixteen_bit or 255 < top <= 65535:
        scale = 255.0 / 65535.0
    elif top > 65535:
        scale = 255.0 / top  # 32-bit data: use the whole range
    elif is_float and top <= 1.0 and np.any(np.mod(array, 1) != 0):
        scale = 255.0  # float image in [0, 1]
    else:
        scale = 1.0  # 8-bit values stored in a wider mode
    return np.clip(np.rint(array * scale), 0, 255).astype(np.uint8)


def decode_image(cell) -> Image.Image:
    """The source image of a row (``{"bytes": ..., "path": ...}`` or a PIL image), decoded and prepared."""
    if isinstance(cell, Image.Image):
        return prepare_image(cell)
    data = cell.get("bytes") if isinstance(cell, dict) else None
    if not data:
        raise ValueError(f"no image bytes in the row's image ({type(cell).__name__})")
    with Image.open(io.BytesIO(data)) as opened:
        opened.load()  # truncated files fail here, not later inside an op
        return prepare_image(opened)
