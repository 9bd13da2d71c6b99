"""The paper's crop and the similarity warps (no MediaPipe needed)."""

import numpy as np
import pytest

from core.fit.crop import (
    MP_68,
    crop_square,
    face_box,
    face_crop,
    outside_fraction,
    square_transform,
    transform_points,
    warp_image,
)


def test_square_transform_maps_square_edges_to_crop_edges():
    mat = square_transform(np.array([100.0, 50.0]), 40.0, 256)
    # the square spans [80, 120] x [30, 70] (continuous pixel coordinates): its edges are the crop edges
    left_edge = transform_points(mat, np.array([80.0, 30.0]))
    assert left_edge[0] == pytest.approx(-0.5)
    right_edge = transform_points(mat, np.array([120.0, 70.0]))
    assert right_edge == pytest.approx([255.5, 255.5])
    centre = transform_points(mat, np.array([100.0, 50.0]))
    assert centre == pytest.approx([127.5, 127.5])


def test_paper_formula_on_a_box():
    pts = np.zeros((478, 3))
    # put the 68-equivalent points on a 100 x 120 box: left 10, right 110, top 20, bottom 140
    box_pts = np.array([[10, 20], [110, 140], [10, 140], [110, 20]], dtype=float)
    pts[MP_68, :2] = box_pts[np.arange(len(MP_68)) % 4]
    pts[10, :2] = (60, -50)  # the forehead point is not part of the box
    assert face_box(pts) == pytest.approx([10, 20, 110, 140])
    centre, side = crop_square(pts)
    old = (100 + 120) / 2 * 1.1
    assert side == pytest.approx(1.35 * old)
    assert centre == pytest.approx([60, 80 - 0.1 * side])  # spans cy - 0.6 side .. cy + 0.4 side
    mat = face_crop(pts, 256)
    top = transform_points(mat, np.array([60, 80 - 0.6 * side]))[1]
    assert top == pytest.approx(-0.5)


def test_warp_identity_and_padding():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    mat = square_transform(np.array([31.5, 31.5]), 64.0, 64)
    assert np.array_equal(warp_image(img, mat, 64), img)
    # a square twice as large, centred on the corner: three quarters outside
    mat = square_transform(np.array([-0.5, -0.5]), 128.0, 64)
    assert outside_fraction(mat, (64, 64), 64) == pytest.approx(0.75)
    zeros = warp_image(img, mat, 64, border="zeros")
    assert zeros[:30, :30].max() == 0 and zeros[40:, 40:].max() > 0
    rep = warp_image(img, mat, 64, border="replicate")
    assert rep[:30, :30].min() >= 0 and rep[0, 0].tolist() == img[0, 0].tolist()
    with pytest.raises(ValueError, match="border"):
        warp_image(img, mat, 64, border="mirror")


def test_strong_downscale_averages_instead_of_aliasing():
    img = np.zeros((1024, 1024, 3), np.uint8)
    img[:, ::2] = 255  # one-pixel stripes: bilinear point sampling would alias to black or white
    mat = square_transform(np.array([511.5, 511.5]), 1024.0, 64)
    out = warp_image(img, mat, 64)
    assert abs(float(out.mean()) - 127.5) < 3 and out.std() < 5
