"""How MediaPipe's landmarks slide over the face as the head turns: a view-dependent landmark offset.

A landmark of the embedding (``core.fit.embedding``) is one fixed surface point, the median of where
MediaPipe put it in views from -30 to 30 degrees. MediaPipe's points are not fixed on the face, though: as
the head turns, each drifts over the surface by a millimetre or two (towards the silhouette, towards where a
frontal face would have it). Small as that is, the fitter reads a turn from the parallax between landmarks of
different depth, and a fixed embedding then under-reads large turns: measured on photos turned by the
geometry engine (whose true pose is known), by 15 % at 30 degrees of yaw and by a third at 20 degrees of
pitch.

MediaPipe's depth drifts too, and more (its z follows its own average face): by itself it made the fitter
under-read yaw by a further 10 %.

``ViewBias`` is that drift as a smooth function of the head's yaw and pitch, zero for a frontal head: per
landmark a 3D offset in the model's rest frame (the image-plane drift) and a depth offset along the camera's
axis (cm)::

    offset(yaw, pitch) = sum_k  phi_k(yaw, pitch) * coef[k]      phi = (y, p, y^2, p^2, y p, y^3, p^3)
    depth(yaw, pitch)  = sum_k  phi_k(yaw, pitch) * depth[k]

with ``y = yaw / 30`` and ``p = pitch / 30`` (clamped to +-1.5). Roll is left out: MediaPipe works on a crop
turned upright, so its drift does not depend on roll. The fitter (``FitOptions.view_bias``) adds the offset
to each landmark before posing it and the depth offset to its projected depth, at the current estimate of
the pose.

The offsets are learned (``python -m core.fit.make_view_bias``) from portraits turned by the geometry engine:
there the true landmark positions are known (the posed mesh), and the drift is MediaPipe's points minus them.
Stored arrays: ``coef (K, L, 3)``, ``depth (K, L)`` float32 and ``landmark_indices (L,)`` (into MediaPipe's
478 points).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.face.rotation import matrix_to_euler

ANGLE_UNIT_DEG = 30.0  # basis angles are in units of 30 degrees ...
ANGLE_LIMIT = 1.5  # ... clamped to +-45 degrees, beyond which nothing was learned
BASIS_NAMES = ("y", "p", "y2", "p2", "yp", "y3", "p3")


def view_basis(yaw_pitch_deg: torch.Tensor) -> torch.Tensor:
    """``(..., 2)`` yaw and pitch in degrees -> ``(..., K)`` basis values (all zero for a frontal head)."""
    a = (yaw_pitch_deg / ANGLE_UNIT_DEG).clamp(-ANGLE_LIMIT, ANGLE_LIMIT)
    y, p = a[..., 0], a[..., 1]
    return torch.stack([y, p, y * y, p * p, y * p, y**3, p**3], -1)


@dataclass(frozen=True)
class ViewBias:
    """View-dependent landmark offsets (see the module docstring).

    Attributes:
        coef: ``(K, L, 3)`` rest-frame offset (cm) per basis function and landmark.
        depth: ``(K, L)`` depth offset (cm, away from the camera) per basis function and landmark.
        landmark_ids: ``(L,)`` long, MediaPipe indices of the landmarks, in the order of ``coef``.
        name: where it came from.
    """

    coef: torch.Tensor
    depth: torch.Tensor
    landmark_ids: torch.Tensor
    name: str = ""

    def for_landmarks(self, landmark_ids: torch.Tensor) -> ViewBias:
        """The offsets of ``landmark_ids`` in that order; landmarks it has no offsets for get zero."""
        pos = {int(i): k for k, i in enumerate(self.landmark_ids.tolist())}
        coef = torch.zeros(self.coef.shape[0], len(landmark_ids), 3, dtype=self.coef.dtype)
        depth = torch.zeros(self.coef.shape[0], len(landmark_ids), dtype=self.coef.dtype)
        for j, i in enumerate(landmark_ids.tolist()):
            if int(i) in pos:
                coef[:, j] = self.coef[:, pos[int(i)]]
                depth[:, j] = self.depth[:, pos[int(i)]]
        return ViewBias(coef, depth, landmark_ids.clone(), self.name)

    def without(self, mask: torch.Tensor) -> ViewBias:
        """The same offsets, float64, with the landmarks of ``mask (L,)`` fixed (zero offsets)."""
        coef, depth = self.coef.to(torch.float64).clone(), self.depth.to(torch.float64).clone()
        coef[:, mask] = 0.0
        depth[:, mask] = 0.0
        return ViewBias(coef, depth, self.landmark_ids, self.name)

    def _basis(self, rot: torch.Tensor) -> torch.Tensor:
        return view_basis(matrix_to_euler(rot)[..., :2]).to(self.coef.dtype)

    def offsets(self, rot: torch.Tensor) -> torch.Tensor:
        """Rest-frame offsets ``(B, L, 3)`` cm for head rotations ``rot (B, 3, 3)``."""
        return torch.einsum("bk,klc->blc", self._basis(rot), self.coef)

    def depth_offsets(self, rot: torch.Tensor) -> torch.Tensor:
        """Depth offsets ``(B, L)`` cm (away from the camera) for head rotations ``rot (B, 3, 3)``."""
        return torch.einsum("bk,kl->bl", self._basis(rot), self.depth.to(self.coef.dtype))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        np.savez_compressed(
            path,
            coef=self.coef.numpy().astype(np.float32),
            depth=self.depth.numpy().astype(np.float32),
            landmark_indices=self.landmark_ids.numpy(),
        )
        return path


def load_view_bias(path: str | Path) -> ViewBias:
    """A ``ViewBias`` from its ``.npz`` (numeric arrays only); ``ValueError`` names what is wrong."""
    path = Path(path)
    with np.load(path, allow_pickle=False) as data:
        missing = {"coef", "depth", "landmark_indices"} - set(data.files)
        if missing:
            raise ValueError(f"{path} is not a landmark view-bias file: missing {sorted(missing)}")
        coef = np.asarray(data["coef"], dtype=np.float64)
        depth = np.asarray(data["depth"], dtype=np.float64)
        ids = np.asarray(data["landmark_indices"], dtype=np.int64)
    k, n = len(BASIS_NAMES), len(ids)
    if coef.shape != (k, n, 3) or depth.shape != (k, n):
        raise ValueError(
            f"{path}: coef and depth have shapes {coef.shape} and {depth.shape}, expected ({k}, {n}, 3) and "
            f"({k}, {n}) for {n} landmarks"
        )
    if not (np.isfinite(coef).all() and np.isfinite(depth).all()):
        raise ValueError(f"{path}: non-finite offsets")
    return ViewBias(torch.from_numpy(coef), torch.from_numpy(depth), torch.from_numpy(ids), str(path))


def fit_view_bias(
    source_views: np.ndarray,
    target_views: np.ndarray,
    drifts: np.ndarray,
    depth_drifts: np.ndarray,
    valid: np.ndarray,
    landmark_ids: np.ndarray,
    ridge: float = 1.0,
) -> ViewBias:
    """Least-squares offsets from observed drifts.

    Args:
        source_views, target_views: ``(N, 2)`` yaw and pitch (degrees) of the source photo and its turned copy.
        drifts: ``(N, L, 3)`` rest-frame drift (cm) of each landmark between the two views: MediaPipe's point
            minus the true one in the turned copy, less the same in the source.
        depth_drifts: ``(N, L)`` the same for the depth (cm, along the camera's axis).
        valid: ``(N, L)`` bool, which drifts to use.
        landmark_ids: ``(L,)`` MediaPipe indices.
        ridge: weight of ``|coef|^2`` (in units of one observation), which keeps rarely seen landmarks near 0.

    The model is ``drift = (phi(target) - phi(source)) @ coef``: the source's own drift is in both terms.
    """
    dphi = (
        view_basis(torch.as_tensor(target_views, dtype=torch.float64))
        - view_basis(torch.as_tensor(source_views, dtype=torch.float64))
    ).numpy()  # (N, K)
    k = dphi.shape[1]
    n_lmk = drifts.shape[1]
    both = np.concatenate([drifts, depth_drifts[..., None]], -1)  # (N, L, 4): one design matrix for all four
    coef = np.zeros((k, n_lmk, 4))
    for j in range(n_lmk):
        rows = valid[:, j]
        if not rows.any():
            continue
        a = dphi[rows]
        coef[:, j] = np.linalg.solve(a.T @ a + ridge * np.eye(k), a.T @ both[rows, j])
    return ViewBias(
        torch.from_numpy(coef[..., :3].copy()),
        torch.from_numpy(coef[..., 3].copy()),
        torch.as_tensor(landmark_ids, dtype=torch.long),
        "fitted",
    )
