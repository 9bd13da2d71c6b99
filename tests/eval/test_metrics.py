"""Image, face and distribution metrics on constructed cases with known values."""

import math

import numpy as np
import pytest
import torch

from core.eval import metrics as M
from core.face.params import FaceParams


def _pair(seed=0, noise=30):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-noise, noise + 1, a.shape), 0, 255).astype(np.uint8)
    return a, b


def test_identical_images():
    a, _ = _pair()
    assert M.l1(a, a) == 0.0
    assert M.psnr(a, a) == math.inf
    assert M.ssim(a, a) == pytest.approx(1.0, abs=1e-12)


def test_l1_and_psnr_known_values():
    a = np.zeros((16, 16, 3), np.uint8)
    b = np.full((16, 16, 3), 51, np.uint8)  # 0.2 everywhere
    assert M.l1(a, b) == pytest.approx(0.2)
    assert M.psnr(a, b) == pytest.approx(10 * math.log10(1 / 0.04))
    half = a.copy()
    half[:8] = 255  # half the pixels off by 1: mse 0.5
    assert M.l1(a, half) == pytest.approx(0.5)
    assert M.psnr(a, half) == pytest.approx(10 * math.log10(2))


def test_ssim_of_constant_images_is_the_luminance_term():
    m1, m2 = 0.2, 0.6
    a = np.full((32, 32, 3), m1)
    b = np.full((32, 32, 3), m2)
    c1 = 0.01**2
    assert M.ssim(a, b) == pytest.approx((2 * m1 * m2 + c1) / (m1**2 + m2**2 + c1), rel=1e-9)


def test_ssim_matches_scikit_image():
    skm = pytest.importorskip("skimage.metrics")
    a, b = _pair(1)
    ref = skm.structural_similarity(
        a / 255.0,
        b / 255.0,
        channel_axis=-1,
        data_range=1.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )
    assert M.ssim(a, b) == pytest.approx(ref, abs=1e-10)
    assert 0.0 < M.ssim(a, b) < 1.0


def test_image_metrics_refuse_mismatched_shapes():
    with pytest.raises(ValueError, match="shape"):
        M.l1(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8))


def test_cosine_keypoints_expression():
    v = np.array([1.0, 2.0, 3.0])
    assert M.cosine_similarity(v, 2 * v) == pytest.approx(1.0)
    assert M.cosine_similarity(v, -v) == pytest.approx(-1.0)
    assert M.cosine_similarity([1, 0], [0, 1]) == pytest.approx(0.0)
    pts = np.random.default_rng(0).uniform(0, 256, (68, 2))
    assert M.keypoint_distance(pts, pts) == 0.0
    assert M.keypoint_distance(pts, pts + [3.0, 4.0]) == pytest.approx(5.0)
    assert M.expression_distance(np.zeros(53), np.full(53, 0.25)) == pytest.approx(0.25)


def _params(head) -> FaceParams:
    p = FaceParams.zeros(1, 4, 53, (1.0, 0.0, 0.0))
    p.head[0] = torch.tensor(head, dtype=torch.float32)
    return p


def test_pose_distance_on_face_params():
    base = _params([5.0, -3.0, 2.0])
    assert M.pose_distance(base, _params([15.0, 7.0, 12.0])) == pytest.approx(10.0, abs=1e-5)
    assert M.pose_errors(base, _params([15.0, -3.0, 2.0])) == pytest.approx([10.0, 0.0, 0.0], abs=1e-5)
    assert M.pose_distance(base, _params([15.0, -3.0, 2.0])) == pytest.approx(10.0 / 3.0, abs=1e-5)
    # angles wrap: 179 vs -179 is 2 degrees apart
    assert M.pose_errors([179.0, 0, 0], [-179.0, 0, 0]) == pytest.approx([2.0, 0.0, 0.0])


def test_frechet_distance_identical_sets_is_zero():
    x = np.random.default_rng(0).normal(size=(300, 16))
    assert M.frechet_distance_features(x, x) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_of_shifted_sets_is_the_squared_shift():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 8))
    shift = rng.normal(size=8)
    assert M.frechet_distance_features(x, x + shift) == pytest.approx(float(shift @ shift), rel=1e-6)


def test_frechet_distance_of_gaussians_known_value():
    # diagonal covariances: |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 2.0])
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 4.0, 1.0])
    expected = 9.0 + (1 - 2) ** 2 + 0 + (3 - 1) ** 2
    assert M.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-9)
    # sampled: N(0, I) vs N(m, I) approach |m|^2
    rng = np.random.default_rng(2)
    m = np.array([2.0, 0.0, 0.0, 0.0])
    d = M.frechet_distance_features(rng.normal(size=(20000, 4)), rng.normal(size=(20000, 4)) + m)
    assert d == pytest.approx(4.0, abs=0.1)


def test_feature_statistics_needs_two_vectors():
    with pytest.raises(ValueError):
        M.feature_statistics(np.zeros((1, 4)))
