"""``fit_image`` on real portraits and on awkward inputs (MediaPipe and the sample media)."""

import io
import logging

import numpy as np
import pytest
import torch
from PIL import Image

from core.fit import FaceFit, NoFaceError, fit_image
from core.fit.crop import transform_points
from core.io.image import ImageError, load_image

pytest.importorskip("mediapipe")

PORTRAIT = "samples__source_video__image__Obama_clip1.png"
PHOTO = "examples__obama2.jpg"  # a larger photo, not a crop
MAX_ERROR = 0.015  # median landmark error / inter-ocular distance


def portrait_table(samples, ict_model, detector) -> tuple[list[tuple], list[tuple]]:
    """Fit every sample image: rows (file, faces, error, yaw, pitch, roll) and failures (file, reason)."""
    rows, failures = [], []
    for path in sorted((samples / "images").iterdir()):
        try:
            fit = fit_image(path, ict_model, detector=detector)
        except (NoFaceError, ImageError) as exc:
            failures.append((path.name, str(exc)))
            continue
        q = fit.quality
        rows.append((path.name, q["faces_found"], q["landmark_error"], q["yaw"], q["pitch"], q["roll"]))
    return rows, failures


@pytest.mark.slow
def test_every_one_face_portrait_fits(samples, ict_model, detector):
    rows, failures = portrait_table(samples, ict_model, detector)
    lines = [
        f"{name:58s} faces={faces} error={100 * err:5.2f}% yaw={yaw:6.1f} pitch={pitch:6.1f} roll={roll:6.1f}"
        for name, faces, err, yaw, pitch, roll in rows
    ]
    lines += [f"{name:58s} FAILED: {reason}" for name, reason in failures]
    print("\n" + "\n".join(lines))
    single = [r for r in rows if r[1] == 1]
    assert len(single) >= 0.9 * len(rows) > 0
    bad = [r for r in single if r[2] >= MAX_ERROR]
    assert not bad, "\n".join(lines)


def test_fit_image_result(samples, ict_model, detector):
    fit = fit_image(samples / "images" / PHOTO, ict_model, detector=detector)
    assert isinstance(fit, FaceFit) and fit.size == 256 and fit.params.batch_size == 1
    assert fit.crop_image.shape == (256, 256, 3) and fit.crop_image.dtype == np.uint8
    assert fit.vertices.shape == (1, ict_model.n_vertices, 3)
    assert fit.landmarks.shape == (478, 3) and fit.original_size == (1200, 626)
    assert fit.quality["faces_found"] == 1 and fit.quality["landmark_error"] < MAX_ERROR
    # the camera is the crop's: projecting the model gives the vertices (crop pixels)
    with torch.no_grad():
        proj = ict_model.project(ict_model(fit.params), fit.params.camera)
    px = (proj[0, :, :2] + 1) * 128 - 0.5
    assert torch.allclose(px, fit.vertices[0, :, :2], atol=1e-3)
    # the crop transform maps the original's pixels into the crop: the eyes are where the crop shows them
    original = load_image(samples / "images" / PHOTO)
    inv = np.linalg.inv(fit.crop)
    eye = fit.landmarks[468, :2]
    u, v = np.round(transform_points(inv, eye)).astype(int)
    assert np.abs(original[v, u].astype(int) - fit.crop_image[int(round(eye[1])), int(round(eye[0]))]).max() < 60
    # the face sits where the paper's crop puts it: the chin ~6 % above the bottom, the eyes at ~1/3
    assert 0.88 < fit.landmarks[152, 1] / 256 < 0.98 and 0.28 < fit.landmarks[468, 1] / 256 < 0.42


def test_size_512_and_save_load(samples, ict_model, detector, tmp_path):
    fit = fit_image(samples / "images" / PORTRAIT, ict_model, size=512, detector=detector)
    assert fit.crop_image.shape == (512, 512, 3) and fit.quality["landmark_error"] < MAX_ERROR
    small = fit_image(samples / "images" / PORTRAIT, ict_model, size=256, detector=detector)
    assert np.allclose(fit.landmarks[:, :2] / 2, small.landmarks[:, :2] + 0.25, atol=0.05)  # same crop, scaled
    assert torch.allclose(fit.params.head, small.params.head, atol=0.5)
    path = fit.save(tmp_path / "fit.npz")
    back = FaceFit.load(path, ict_model)
    assert torch.allclose(back.params.shape, fit.params.shape) and np.allclose(back.crop, fit.crop)
    assert back.quality["faces_found"] == 1 and torch.allclose(back.vertices, fit.vertices, atol=1e-3)


def test_no_face_is_a_clear_error(ict_model, detector, tmp_path):
    grey = np.full((300, 300, 3), 128, np.uint8)
    with pytest.raises(NoFaceError, match="flat.png: no face"):
        path = tmp_path / "flat.png"
        Image.fromarray(grey).save(path)
        fit_image(path, ict_model, detector=detector)
    with pytest.raises(ValueError, match="no face"):  # NoFaceError is a ValueError
        fit_image(grey, ict_model, detector=detector)


def test_corrupt_file(ict_model, tmp_path):
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    with pytest.raises(ImageError, match="broken.jpg"):
        fit_image(path, ict_model)
    with pytest.raises(ImageError, match="no such file"):
        fit_image(tmp_path / "missing.png", ict_model)


def test_grey_rgba_and_bytes_inputs(samples, ict_model, detector):
    rgb = load_image(samples / "images" / PORTRAIT)
    grey = np.asarray(Image.fromarray(rgb).convert("L"))
    fit = fit_image(grey, ict_model, detector=detector)
    assert fit.crop_image.shape == (256, 256, 3) and fit.quality["landmark_error"] < MAX_ERROR
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], -1)
    fit_rgba = fit_image(rgba, ict_model, detector=detector)
    assert fit_rgba.quality["landmark_error"] < MAX_ERROR
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    fit_bytes = fit_image(buf.getvalue(), ict_model, detector=detector)
    assert np.allclose(fit_bytes.crop, fit_rgba.crop, atol=1e-3)


def test_large_photo_maps_back(samples, ict_model, detector):
    """A 4x upscaled photo (detected on a downscaled copy): same face, crop 4x smaller in scale."""
    rgb = load_image(samples / "images" / PORTRAIT)
    big = np.asarray(Image.fromarray(rgb).resize((1024, 1024), Image.Resampling.BICUBIC))
    fit_small = fit_image(rgb, ict_model, detector=detector)
    fit_big = fit_image(big, ict_model, detector=detector)
    assert fit_big.original_size == (1024, 1024)
    assert fit_big.crop[0, 0] == pytest.approx(fit_small.crop[0, 0] / 4, rel=0.03)
    # the same original point (scaled) lands on the same crop pixel
    p_small = transform_points(fit_small.crop, np.array([128.0, 100.0]))
    p_big = transform_points(fit_big.crop, np.array([128.0, 100.0]) * 4 + 1.5)
    assert np.allclose(p_small, p_big, atol=2.0)


def test_several_faces_take_the_largest_and_say_so(samples, ict_model, detector, caplog):
    a = load_image(samples / "images" / PORTRAIT)
    b = np.asarray(Image.fromarray(a).resize((160, 160)))
    canvas = np.full((300, 480, 3), 200, np.uint8)
    canvas[20:276, 10:266] = a
    canvas[60:220, 300:460] = b
    with caplog.at_level(logging.WARNING):
        fit = fit_image(canvas, ict_model, detector=detector, name="two.png")
    assert fit.quality["faces_found"] == 2
    assert "2 faces found" in caplog.text and "two.png" in caplog.text
    centre = transform_points(np.linalg.inv(fit.crop), fit.landmarks[1, :2])
    assert centre[0] < 266  # the larger face, on the left
