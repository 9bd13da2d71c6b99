import io

import numpy as np
import pytest
from PIL import Image

from core.io.image import ImageError, limit_size, load_image, save_image


def _png_bytes(img: Image.Image, fmt="PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_grey_rgba_palette_and_16bit_become_rgb(tmp_path):
    grey = Image.fromarray(np.full((20, 30), 100, np.uint8), "L")
    assert load_image(_png_bytes(grey)).shape == (20, 30, 3)
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :15, 3] = 255  # left half opaque red, right half transparent -> white
    out = load_image(_png_bytes(Image.fromarray(rgba, "RGBA")))
    assert out[0, 0].tolist() == [200, 0, 0] and out[0, 29].tolist() == [255, 255, 255]
    pal = Image.fromarray(np.full((20, 30, 3), 50, np.uint8)).convert("P")
    assert np.abs(load_image(_png_bytes(pal))[5, 5].astype(int) - 50).max() <= 2  # palette quantisation
    sixteen = Image.fromarray(np.full((20, 30), 65535, np.uint16))
    assert load_image(_png_bytes(sixteen))[0, 0].tolist() == [255, 255, 255]


def test_exif_orientation_is_applied():
    img = Image.fromarray(np.zeros((10, 40, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    out = load_image(_png_bytes(img, "JPEG", exif=exif.tobytes()))
    assert out.shape == (40, 10, 3)


def test_arrays_of_every_common_kind():
    assert load_image(np.random.rand(16, 16)).shape == (16, 16, 3)
    assert load_image(np.zeros((16, 16, 1), np.uint8)).shape == (16, 16, 3)
    assert load_image(np.zeros((16, 16, 4), np.uint8))[0, 0].tolist() == [255, 255, 255]
    with pytest.raises(ImageError, match="expected an image array"):
        load_image(np.zeros((16, 16, 2)))
    with pytest.raises(ImageError, match="NaN"):
        load_image(np.full((16, 16, 3), np.nan))


def test_bad_files_give_clear_errors(tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a photo")
    with pytest.raises(ImageError, match="notes.jpg: not a readable image"):
        load_image(text)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        load_image(empty)
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "missing.png")
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(_png_bytes(Image.fromarray(np.zeros((64, 64, 3), np.uint8)))[:60])
    with pytest.raises(ImageError, match="cut.png"):
        load_image(truncated)
    with pytest.raises(ImageError, match="too small"):
        load_image(np.zeros((4, 4, 3), np.uint8))


def test_huge_image_is_refused_before_decoding(monkeypatch):
    import core.io.image as image_mod

    monkeypatch.setattr(image_mod, "MAX_PIXELS", 1000)
    with pytest.raises(ImageError, match="megapixels"):
        load_image(_png_bytes(Image.fromarray(np.zeros((100, 100, 3), np.uint8))))


def test_limit_size_and_save(tmp_path):
    img = np.zeros((4000, 6000, 3), np.uint8)
    small, scale = limit_size(img, 1500)
    assert small.shape == (1000, 1500, 3) and scale == pytest.approx(0.25)
    same, one = limit_size(img[:100, :100])
    assert one == 1.0 and same.shape == (100, 100, 3)
    path = save_image(tmp_path / "out" / "a.png", np.full((10, 12, 3), 7, np.uint8))
    assert load_image(path)[0, 0].tolist() == [7, 7, 7]
