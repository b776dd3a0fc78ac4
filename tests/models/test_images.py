"""Any PIL image becomes upright 8-bit RGB of a bounded size, with the right colours."""

import numpy as np
import pytest
from PIL import Image

from prefgen.models.images import prepare_image, to_rgb


def palette_with_transparency():
    image = Image.new("P", (4, 4), 1)
    image.putpalette([0, 0, 0, 200, 10, 10])
    image.putpixel((0, 0), 0)
    image.info["transparency"] = 0
    return image


@pytest.mark.parametrize(
    "make, pixel, expected",
    [
        (lambda: Image.new("L", (4, 4), 90), (1, 1), (90, 90, 90)),
        (lambda: Image.new("1", (4, 4), 1), (1, 1), (255, 255, 255)),
        (lambda: Image.new("LA", (4, 4), (90, 255)), (1, 1), (90, 90, 90)),
        (lambda: Image.new("RGBA", (4, 4), (200, 10, 10, 0)), (1, 1), (255, 255, 255)),  # transparent -> white
        (lambda: Image.new("RGBA", (4, 4), (200, 10, 10, 255)), (1, 1), (200, 10, 10)),
        (lambda: Image.new("RGBA", (4, 4), (0, 0, 0, 128)), (1, 1), (127, 127, 127)),  # half black over white
        (palette_with_transparency, (0, 0), (255, 255, 255)),
        (palette_with_transparency, (1, 1), (200, 10, 10)),
        (lambda: Image.new("CMYK", (4, 4), (0, 255, 255, 0)), (1, 1), (255, 0, 0)),
        (lambda: Image.fromarray(np.full((4, 4), 65535, dtype=np.uint16)), (1, 1), (255, 255, 255)),  # 16-bit white
        (lambda: Image.fromarray(np.full((4, 4), 32896, dtype=np.uint16)), (1, 1), (128, 128, 128)),  # 16-bit mid grey
        (
            lambda: Image.fromarray(np.full((4, 4), 40000, dtype=np.int32)),
            (1, 1),
            (156, 156, 156),
        ),  # mode I, 16-bit data
        (lambda: Image.fromarray(np.full((4, 4), 0.5, dtype=np.float32)), (1, 1), (128, 128, 128)),  # mode F in [0, 1]
        (lambda: Image.new("YCbCr", (4, 4), (76, 85, 255)), (1, 1), (254, 0, 0)),
    ],
)
def test_to_rgb_converts_every_mode_with_the_right_colour(make, pixel, expected):
    image = make()
    converted = to_rgb(image)
    assert converted.mode == "RGB" and converted.size == image.size
    assert converted.getpixel(pixel) == pytest.approx(expected, abs=1)


def test_sixteen_bit_grayscale_is_scaled_not_clipped():
    ramp = np.linspace(0, 65535, 256).astype(np.uint16).reshape(16, 16)
    converted = np.asarray(to_rgb(Image.fromarray(ramp)))[..., 0]
    assert converted.min() == 0 and converted.max() == 255
    assert len(np.unique(converted)) > 200  # PIL's convert("RGB") would give mostly 255


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (40, 20), (10, 20, 30))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image.info["exif"] = exif.tobytes()
    image = Image.open(_saved_jpeg(image, exif))
    assert prepare_image(image).size == (20, 40)


def test_huge_images_are_shrunk_to_the_pixel_budget_keeping_the_aspect_ratio():
    image = Image.new("RGB", (3000, 2000), (1, 2, 3))
    small = prepare_image(image, max_pixels=600_000)
    assert small.width * small.height <= 600_000
    assert small.width / small.height == pytest.approx(1.5, rel=0.01)


def test_images_within_budget_are_untouched():
    image = Image.new("RGB", (30, 20))
    assert prepare_image(image) is image


def test_non_images_are_refused():
    with pytest.raises(TypeError, match="PIL image"):
        prepare_image("picture.png")


def _saved_jpeg(image, exif):
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    buffer.seek(0)
    return buffer
