"""Where MediaPipe's landmarks sit on the face model's surface.

A ``LandmarkMap`` names which of MediaPipe's 478 landmarks are used (``landmark_ids``), the surface point
of each on the model (a triangle and barycentric coordinates, ``core.face.base.LandmarkEmbedding``) and a
weight per landmark for the fitter.

- ICT: ``core/fit/data/ict_mediapipe_embedding.npz``, all 478 points, made by ``python -m
  core.fit.make_embedding`` (renders of the ICT mesh run through MediaPipe, see that module). It also
  stores a group per landmark and the spread of the per-view estimates, from which the weights come.
- FLAME: FLAME's own ``mediapipe_landmark_embedding.npz`` (keys ``lmk_face_idx``, ``lmk_b_coords``,
  ``landmark_indices``: 105 of the 478 points), when the user has it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.face.base import LandmarkEmbedding

DATA_DIR = Path(__file__).resolve().parent / "data"
ICT_EMBEDDING = DATA_DIR / "ict_mediapipe_embedding.npz"

# Landmark groups stored in the ICT embedding file (index = code).
GROUPS = ("other", "oval", "lips_outer", "lips_inner", "eyes", "brows", "iris", "nose")
# Relative weight of each group in the fit: the face oval is the least well defined (it slides with the
# silhouette and hair), eye and lip contours the best.
GROUP_WEIGHT = {
    "other": 1.0,
    "oval": 0.5,
    "lips_outer": 1.5,
    "lips_inner": 1.5,
    "eyes": 1.5,
    "brows": 1.0,
    "iris": 1.0,
    "nose": 1.0,
}


@dataclass(frozen=True)
class LandmarkMap:
    """MediaPipe landmarks used by a fit and their surface points on the model.

    Attributes:
        landmark_ids: ``(L,)`` long, indices into MediaPipe's 478 points.
        embedding: the model surface point of each, ``face_ids (L,)``, ``bary (L, 3)``.
        weights: ``(L,)`` float, relative weight of each landmark in the fit (mean about 1).
        groups: ``(L,)`` long, codes into ``GROUPS`` (all "other" when unknown).
        name: where it came from.
    """

    landmark_ids: torch.Tensor
    embedding: LandmarkEmbedding
    weights: torch.Tensor
    groups: torch.Tensor
    name: str

    def __len__(self) -> int:
        return int(self.landmark_ids.numel())

    def vertex_ids(self, faces: torch.Tensor) -> torch.Tensor:
        """Sorted unique vertices of the embedding's triangles ``(V,)``."""
        return torch.unique(faces[self.embedding.face_ids].reshape(-1))

    def group_mask(self, *names: str) -> torch.Tensor:
        """``(L,)`` bool: landmarks in any of the named groups."""
        codes = torch.tensor([GROUPS.index(n) for n in names])
        return torch.isin(self.groups, codes)


def _weights_from(groups: np.ndarray, spread_cm: np.ndarray | None, n_views: np.ndarray | None = None) -> np.ndarray:
    """Relative landmark weights: the group's, divided by the embedding's uncertainty ``0.1^2 + spread^2``
    (cm^2; a landmark whose per-view estimates disagreed is less certain). A spread from fewer than 5
    views says little, so it counts as at least 1 mm. Normalised to mean 1."""
    w = np.array([GROUP_WEIGHT[GROUPS[g]] for g in groups], dtype=np.float64)
    if spread_cm is not None:
        spread = np.nan_to_num(np.asarray(spread_cm, dtype=np.float64), nan=0.3)
        if n_views is not None:
            few = (np.asarray(n_views) < 5) & (groups != GROUPS.index("iris"))
            spread = np.where(few, np.maximum(spread, 0.1), spread)
        w = w * 0.01 / (0.01 + np.square(spread))
    return (w / w.mean()).astype(np.float32)


def load_ict_embedding(path: str | Path | None = None) -> LandmarkMap:
    """The committed ICT embedding of all 478 MediaPipe landmarks (or the file at ``path``)."""
    path = Path(path) if path else ICT_EMBEDDING
    if not path.is_file():
        raise FileNotFoundError(
            f"ICT landmark embedding {path} missing; make it with python -m core.fit.make_embedding"
        )
    with np.load(path, allow_pickle=False) as data:
        face_ids = data["face_ids"].astype(np.int64)
        bary = data["bary"].astype(np.float32)
        groups = data["groups"].astype(np.int64) if "groups" in data else np.zeros(len(face_ids), np.int64)
        spread = data["spread_cm"] if "spread_cm" in data else None
        n_views = data["n_views"] if "n_views" in data else None
        ids = data["landmark_indices"].astype(np.int64) if "landmark_indices" in data else np.arange(len(face_ids))
    return LandmarkMap(
        torch.from_numpy(ids),
        LandmarkEmbedding(torch.from_numpy(face_ids), torch.from_numpy(bary)),
        torch.from_numpy(_weights_from(groups, spread, n_views)),
        torch.from_numpy(groups),
        str(path),
    )


def load_flame_embedding(path: str | Path) -> LandmarkMap:
    """FLAME's ``mediapipe_landmark_embedding.npz`` (105 of the 478 MediaPipe points)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"FLAME MediaPipe embedding {path} does not exist")
    with np.load(path, allow_pickle=False) as data:  # numeric arrays only: never unpickle a download
        missing = {"lmk_face_idx", "lmk_b_coords", "landmark_indices"} - set(data.files)
        if missing:
            raise ValueError(f"{path} is not FLAME's MediaPipe embedding: missing {sorted(missing)}")
        face_ids = np.asarray(data["lmk_face_idx"], dtype=np.int64).reshape(-1)
        bary = np.asarray(data["lmk_b_coords"], dtype=np.float32).reshape(-1, 3)
        ids = np.asarray(data["landmark_indices"], dtype=np.int64).reshape(-1)
    if not len(face_ids) == len(bary) == len(ids):
        raise ValueError(f"{path}: {len(face_ids)} faces, {len(bary)} barycentrics, {len(ids)} landmark indices")
    groups = np.zeros(len(ids), np.int64)
    try:  # give the FLAME subset the same group weights when the ICT file knows the groups
        ict = load_ict_embedding()
        groups = ict.groups.numpy()[ids]
    except FileNotFoundError:
        pass
    return LandmarkMap(
        torch.from_numpy(ids),
        LandmarkEmbedding(torch.from_numpy(face_ids), torch.from_numpy(bary)),
        torch.from_numpy(_weights_from(groups, None)),
        torch.from_numpy(groups),
        str(path),
    )


FLAME_EMBEDDING_NAME = "mediapipe_landmark_embedding.npz"


def default_landmark_map(model, path: str | Path | None = None) -> LandmarkMap:
    """The map for ``model``: the ICT file for ICT; for FLAME, ``path``, else ``$GDPW_FLAME_MEDIAPIPE``, else
    FLAME's ``mediapipe_landmark_embedding.npz`` beside the model file."""
    import os

    if model.kind == "ict":
        return load_ict_embedding(path)
    if model.kind == "flame":
        beside = Path(getattr(model, "source_path", ".")).parent / FLAME_EMBEDDING_NAME
        path = path or os.environ.get("GDPW_FLAME_MEDIAPIPE") or (beside if beside.is_file() else None)
        if not path:
            raise FileNotFoundError(
                f"fitting FLAME needs FLAME's {FLAME_EMBEDDING_NAME}: put it beside the "
                "model file, pass embedding=..., or set GDPW_FLAME_MEDIAPIPE"
            )
        return load_flame_embedding(path)
    raise ValueError(f"no MediaPipe landmark embedding known for the {model.kind} model")
