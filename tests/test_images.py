"""poster_studio.images: load_image against every bad and odd input (the library side; the app's side of the
same inputs is in test_app.py), the image <-> tensor conversions, fitting to 2:3 and the notes on what was decided."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import BAD_FILE_MESSAGES, make_bad_files, make_odd_images, png_bomb_bytes
from poster_studio.errors import InvalidImageError, PosterStudioError
from poster_studio.images import FIT_MODES, fit_image, image_notes, load_image, needs_fitting, to_pil, to_pils, \
    to_tensor


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


def test_animated_gif_first_frame_and_note(odd):
    img = load_image(odd["animated.gif"])
    assert np.asarray(img)[0, 0].tolist() == [255, 0, 0]
    notes = image_notes(img)
    assert len(notes) == 1 and "animated (3 frames)" in notes[0] and "first frame" in notes[0]
    assert image_notes(load_image(odd["gray.png"])) == []  # still pictures get no note


def test_pil_and_array_inputs_round_trip():
    arr = (np.random.default_rng(0).random((40, 30, 3)) * 255).astype(np.uint8)
    assert np.array_equal(np.asarray(load_image(arr)), arr)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    assert np.array_equal(np.asarray(load_image(buf.getvalue())), arr)


def test_tensor_round_trip():
    arr = (np.random.default_rng(1).random((30, 20, 3)) * 255).astype(np.uint8)
    x = to_tensor(Image.fromarray(arr))
    assert x.shape == (3, 30, 20) and x.dtype == torch.float32 and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert np.array_equal(np.asarray(to_pil(x)), arr)
    assert np.array_equal(np.asarray(to_pil(x[None])), arr)  # a batch of one
    assert np.asarray(to_pil(torch.full((3, 4, 4), 2.0))).min() == 255  # clamped, not wrapped
    pils = to_pils(torch.stack([x, x]) * 2 - 1, (-1.0, 1.0))  # tanh range
    assert len(pils) == 2 and np.abs(np.asarray(pils[0], dtype=np.int16) - arr).max() <= 1


def _wide_with_green_edge(w=300, h=150) -> Image.Image:
    """Grey picture, 2:1, whose left tenth is green: a 2:3 centre crop loses the green, fitting it whole keeps it."""
    a = np.full((h, w, 3), 128, np.uint8)
    a[:, : w // 10] = (0, 255, 0)
    return Image.fromarray(a)


def test_fit_image_crop_and_fit():
    wide = _wide_with_green_edge()
    assert FIT_MODES == ("crop", "fit") and needs_fitting(wide, 60, 90) and not needs_fitting(wide, 200, 100)
    crop = np.asarray(fit_image(wide, (60, 90), "crop"), dtype=np.int16)
    fit = np.asarray(fit_image(wide, (60, 90), "fit"), dtype=np.int16)
    assert crop.shape == fit.shape == (90, 60, 3)
    green = lambda a: (a[..., 1] - a[..., 0] > 100)  # noqa: E731
    assert not green(crop).any()  # the centre 2:3 part only
    # fit: the whole picture, 60x30, in the middle rows (green at its left edge), on a blurred backdrop
    assert green(fit[40:50, :4]).all() and not green(fit[40:50, 10:]).any()
    assert np.abs(fit[:25] - 128).max() <= 2 and np.abs(fit[-25:] - 128).max() <= 2  # backdrop: no black bars
    same = Image.new("RGB", (40, 60), (1, 2, 3))  # already 2:3: only resized, whatever the mode
    assert np.array_equal(np.asarray(fit_image(same, (20, 30), "fit")), np.asarray(fit_image(same, (20, 30), "crop")))
