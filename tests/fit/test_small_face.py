"""Small faces in large photos: the tile search finds what the downscaled first pass misses."""

from __future__ import annotations

import numpy as np
from PIL import Image

PORTRAIT = "assets__examples__source__s1.jpg"


def _scene(detector, samples, face_px: int, top_left: tuple[int, int]) -> tuple[np.ndarray, tuple]:
    """A 1920 x 1080 photo with the sample portrait shrunk so that its face is ``face_px`` wide (landmark
    box), pasted at ``top_left`` (x, y) on a plain gradient; returns it and the expected face box."""
    from core.io.image import load_image

    img = load_image(samples / "images" / PORTRAIT)
    left, top, right, bottom = detector.detect(img).box
    scale = face_px / (right - left)
    small = np.asarray(
        Image.fromarray(img).resize(
            (round(img.shape[1] * scale), round(img.shape[0] * scale)), Image.Resampling.LANCZOS
        )
    )
    canvas = np.repeat(np.linspace(60, 200, 1920).astype(np.uint8)[None, :, None], 3, axis=2)
    canvas = np.ascontiguousarray(np.repeat(canvas, 1080, axis=0))
    x, y = top_left
    canvas[y : y + small.shape[0], x : x + small.shape[1]] = small
    box = (x + left * scale, y + top * scale, x + right * scale, y + bottom * scale)
    return canvas, box


def test_116_px_face_in_a_1080p_photo_is_found(detector, samples):
    photo, box = _scene(detector, samples, 116, (1300, 300))
    from core.io.image import limit_size

    assert detector._run(detector._mesh, limit_size(photo, detector.detect_side)[0]) == []  # the first pass misses it
    found = detector.detect(photo)
    assert found is not None
    assert np.allclose(found.box, box, atol=12)  # the right face, in the original's pixels


def test_no_face_message_states_the_searched_size(detector):
    import pytest

    from core.fit.landmarks import MIN_FACE_PX, NoFaceError, detect_landmarks

    blank = np.full((1080, 1920, 3), 128, np.uint8)
    with pytest.raises(NoFaceError, match=f"about {MIN_FACE_PX} px"):
        detect_landmarks(blank, "blank.png", detector)
