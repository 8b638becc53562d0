"""poster_studio.images.load_image against every bad and odd input of issue 7 (the library side; the app's
side of the same inputs is in test_app.py)."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from conftest import BAD_FILE_MESSAGES, make_bad_files, make_odd_images, png_bomb_bytes
from poster_studio.errors import InvalidImageError, PosterStudioError
from poster_studio.images import load_image


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    return make_bad_files(tmp_path_factory.mktemp("bad"))


@pytest.fixture(scope="module")
def odd(tmp_path_factory):
    return make_odd_images(tmp_path_factory.mktemp("odd"))


@pytest.mark.parametrize("name", sorted(BAD_FILE_MESSAGES))
def test_bad_file_gives_one_line_message(bad, name):
    with pytest.raises(InvalidImageError) as info:
        load_image(bad[name])
    msg = str(info.value)
    assert isinstance(info.value, PosterStudioError)
    assert "\n" not in msg and "Traceback" not in msg
    assert BAD_FILE_MESSAGES[name].lower() in msg.lower(), msg


@pytest.mark.parametrize("name", ["not_an_image.png", "truncated.jpg", "page.png", "bomb.png", "empty.png"])
def test_bad_bytes_give_the_same_error(bad, name):
    with pytest.raises(InvalidImageError):
        load_image(bad[name].read_bytes())


def test_bomb_is_refused_before_decoding():
    # 20000x20000 claimed by the header: refused on the header, so no 1.2 GB buffer is ever allocated.
    with pytest.raises(InvalidImageError, match="too large|megapixels"):
        load_image(png_bomb_bytes())


def test_none_and_tiny_arrays():
    with pytest.raises(InvalidImageError, match="No image"):
        load_image(None)
    with pytest.raises(InvalidImageError):
        load_image(np.zeros((0, 0, 3), np.uint8))
    with pytest.raises(InvalidImageError, match="1x1"):
        load_image(Image.new("RGB", (1, 1)))


@pytest.mark.parametrize("name", ["gray.png", "rgba.png", "palette.png", "cmyk.jpg", "gray16.png", "animated.gif"])
def test_odd_modes_become_rgb(odd, name):
    img = load_image(odd[name])
    assert img.mode == "RGB" and img.size == (60, 90)
    a = np.asarray(img)
    assert a.dtype == np.uint8 and a.shape == (90, 60, 3)


def test_sixteen_bit_keeps_its_range(odd):
    a = np.asarray(load_image(odd["gray16.png"]))[..., 0]
    assert a.min() == 0 and a.max() == 255  # rescaled, not clipped to white


def test_rgba_is_composited_on_white(odd):
    a = np.asarray(load_image(odd["rgba.png"]))
    assert a[0, 0].tolist() == [127, 127, 127] or a[0, 0, 1] >= 120  # half-transparent black on white


def test_animated_gif_first_frame(odd):
    assert np.asarray(load_image(odd["animated.gif"]))[0, 0].tolist() == [255, 0, 0]


def test_pil_and_array_inputs_round_trip():
    arr = (np.random.default_rng(0).random((40, 30, 3)) * 255).astype(np.uint8)
    assert np.array_equal(np.asarray(load_image(arr)), arr)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    assert np.array_equal(np.asarray(load_image(buf.getvalue())), arr)
