"""The paper's evaluation metrics as plain functions (design/gdpw-model.md §11.2).

Image metrics take RGB uint8 images ``(H, W, 3)`` (or floats in [0, 1]) and compare them in [0, 1] units:

- ``l1``: mean absolute difference.
- ``psnr``: peak signal-to-noise ratio in dB (``inf`` for identical images).
- ``ssim``: structural similarity of Wang et al. (2004): Gaussian window sigma 1.5 (11 x 11), K1 = 0.01,
  K2 = 0.03, per RGB channel, averaged over the pixels whose window lies inside the image and over the
  channels. Equal to ``skimage.metrics.structural_similarity(a, b, channel_axis=-1, data_range=1,
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``.

Face metrics take what ``core.eval.analysis`` measures on each image:

- ``cosine_similarity``: CSIM, of two face-recognition embeddings.
- ``keypoint_distance``: AKD, mean Euclidean distance of corresponding landmarks (pixels).
- ``expression_distance``: AED, mean absolute difference of expression coefficients.
- ``pose_distance``: APD, mean absolute difference of (yaw, pitch, roll) in degrees, each wrapped to
  [-180, 180] (``pose_errors`` gives the three).

Distribution metrics:

- ``feature_statistics`` / ``frechet_distance`` / ``frechet_distance_features``: the Fréchet distance of two
  Gaussians fitted to feature sets, ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^1/2)``, as in FID. With
  Inception-v3 pool features it is FID; ``core.eval`` applies it to dlib face-recognition embeddings so that a
  distribution metric is always available (``fd_dlib``).
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

log = logging.getLogger(__name__)

SSIM_SIGMA = 1.5
SSIM_RADIUS = 5  # int(3.5 * sigma + 0.5): scipy's gaussian_filter truncation, as skimage uses it
SSIM_K1, SSIM_K2 = 0.01, 0.03


# ------------------------------------------------------------------------------------------ images
def to_unit(image: np.ndarray) -> np.ndarray:
    """An image as float64 in [0, 1]: uint8 is divided by 255, floats are taken as already in [0, 1]."""
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        return arr.astype(np.float64) / 255.0
    return arr.astype(np.float64)


def _check_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = to_unit(a), to_unit(b)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    return a, b


def l1(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two images in [0, 1] units."""
    a, b = _check_pair(a, b)
    return float(np.abs(a - b).mean())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB for a peak of 1 (``inf`` when the images are identical)."""
    a, b = _check_pair(a, b)
    mse = float(((a - b) ** 2).mean())
    return math.inf if mse == 0.0 else 10.0 * math.log10(1.0 / mse)


def _gaussian_kernel(sigma: float = SSIM_SIGMA, radius: int = SSIM_RADIUS) -> np.ndarray:
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity (Wang et al. 2004, Gaussian window) of two images, mean over RGB channels.

    Grey images ``(H, W)`` are accepted too. Both sides must be at least 11 pixels.
    """
    from scipy.ndimage import correlate1d

    a, b = _check_pair(a, b)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    if min(a.shape[:2]) < 2 * SSIM_RADIUS + 1:
        raise ValueError(f"SSIM needs images of at least {2 * SSIM_RADIUS + 1} pixels, got {a.shape[:2]}")
    k, r = _gaussian_kernel(), SSIM_RADIUS

    def blur(t: np.ndarray) -> np.ndarray:  # separable filter; only windows inside the image are kept
        return correlate1d(correlate1d(t, k, axis=0), k, axis=1)[r:-r, r:-r]

    mx, my = blur(a), blur(b)
    vx = blur(a * a) - mx * mx
    vy = blur(b * b) - my * my
    cxy = blur(a * b) - mx * my
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


# ------------------------------------------------------------------------------------------ faces
def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embedding vectors (CSIM)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0.0 or nb == 0.0:
        raise ValueError("cosine similarity of a zero vector")
    return float(np.clip(a @ b / (na * nb), -1.0, 1.0))


def keypoint_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean Euclidean distance of corresponding points ``(N, 2)`` (AKD, in the points' units)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"keypoint sets differ in shape: {a.shape} vs {b.shape}")
    return float(np.linalg.norm(a[..., :2] - b[..., :2], axis=-1).mean())


def expression_distance(a, b) -> float:
    """Mean absolute difference of expression coefficients (AED). Arrays, tensors or ``FaceParams`` (B = 1)."""
    a, b = _field(a, "expression"), _field(b, "expression")
    if a.shape != b.shape:
        raise ValueError(f"expression vectors differ in shape: {a.shape} vs {b.shape}")
    return float(np.abs(a - b).mean())


def pose_errors(a, b) -> np.ndarray:
    """Absolute differences ``(3,)`` of (yaw, pitch, roll) in degrees, each wrapped to [0, 180].

    Arrays ``(3,)``, tensors or ``FaceParams`` (their ``head``, B = 1).
    """
    a, b = _field(a, "head"), _field(b, "head")
    if a.shape[-1] != 3 or b.shape[-1] != 3:
        raise ValueError(f"poses must be (yaw, pitch, roll), got {a.shape} and {b.shape}")
    return np.abs((a - b + 180.0) % 360.0 - 180.0)


def pose_distance(a, b) -> float:
    """APD: the mean of ``pose_errors`` over yaw, pitch and roll, in degrees (a head turned by 10 degrees
    about each of the three axes scores 10; a 10-degree yaw alone scores 10 / 3)."""
    return float(pose_errors(a, b).mean())


def _field(x, name: str) -> np.ndarray:
    if hasattr(x, name) and not isinstance(x, np.ndarray):  # FaceParams
        x = getattr(x, name)
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64).reshape(-1)


# ------------------------------------------------------------------------------------------ distributions
def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and covariance ``(D, D)`` (unbiased, as FID code does) of features ``(N, D)``."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need at least two feature vectors (N, D), got {x.shape}")
    return x.mean(0), np.cov(x, rowvar=False)


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Fréchet distance of two Gaussians (the FID formula, as in the reference implementation)."""
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape:
        raise ValueError("the two distributions differ in dimension")
    diff = mu1 - mu2
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        log.debug("Fréchet distance: singular product of covariances; adding %g to the diagonals", eps)
        offset = np.eye(s1.shape[0]) * eps
        covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            log.debug("Fréchet distance: imaginary part %.3g dropped", float(np.abs(covmean.imag).max()))
        covmean = covmean.real
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))
    return max(value, 0.0)


def frechet_distance_features(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between two feature sets ``(N, D)`` and ``(M, D)``."""
    return frechet_distance(*feature_statistics(a), *feature_statistics(b))
