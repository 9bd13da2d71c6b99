"""A face-like model file in FLAME 2020's pickle format, made from the shipped ICT model, with a matching
``mediapipe_landmark_embedding.npz``: the FLAME code path end to end (load, fit, edit, studio) without the
licensed file.

The face part of the ICT mesh (vertices 0..6705) becomes the template in metres; ten ICT identity modes are the
shape directions and ten ICT blendshapes (jaw open, smiles, blinks, ...) the expression directions (at
shapedirs columns 300..309, FLAME's layout). Five joints as FLAME's (global, neck, jaw, eyes); the skinning
puts the chin on the jaw joint. The landmark embedding is the ICT embedding's points that lie on that part.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import scipy.sparse

N_FACE = 6706  # ICT's narrow face area: vertices 0..6705
SHAPES = 10
EXPRESSIONS = (
    "jawOpen",
    "mouthSmile_L",
    "mouthSmile_R",
    "eyeBlink_L",
    "eyeBlink_R",
    "browInnerUp_L",
    "browInnerUp_R",
    "mouthFunnel",
    "mouthPucker",
    "cheekPuff_L",
)


def _joints(v: np.ndarray) -> np.ndarray:
    """Rest joints (metres): global and neck behind the face, the jaw hinge, the two eyes."""
    centre = v.mean(0)
    top, bottom = v[:, 1].max(), v[:, 1].min()
    eye_y = bottom + 0.62 * (top - bottom)
    return np.array(
        [
            [centre[0], bottom, centre[2] - 0.08],
            [centre[0], bottom - 0.02, centre[2] - 0.06],
            [centre[0], bottom + 0.35 * (top - bottom), centre[2] - 0.06],
            [centre[0] + 0.032, eye_y, centre[2]],
            [centre[0] - 0.032, eye_y, centre[2]],
        ]
    )


def _regressor(v: np.ndarray, joints: np.ndarray) -> scipy.sparse.csc_matrix:
    """Each joint as an affine combination of 4 vertices (the joint regressor FLAME stores)."""
    rows, cols, vals = [], [], []
    for j, target in enumerate(joints):
        ids = np.argsort(np.linalg.norm(v - target, axis=1))[[0, 50, 400, 2000]]
        m = np.vstack([v[ids].T, np.ones((1, 4))])
        w = np.linalg.lstsq(m, np.r_[target, 1.0], rcond=None)[0]
        rows += [j] * 4
        cols += ids.tolist()
        vals += w.tolist()
    return scipy.sparse.csc_matrix((vals, (rows, cols)), shape=(5, len(v)))


def write_face_like_flame(folder: Path, ict_npz: Path) -> Path:
    """Write ``generic_model.pkl`` and ``mediapipe_landmark_embedding.npz`` into ``folder``; returns the pkl."""
    from core.fit.embedding import load_ict_embedding

    folder.mkdir(parents=True, exist_ok=True)
    ict = np.load(ict_npz)
    v = ict["v_template"][:N_FACE].astype(np.float64) / 100.0
    faces = ict["faces"]
    keep = (faces < N_FACE).all(1)
    names = [str(n) for n in ict["expression_names"]]
    shapedirs = np.zeros((N_FACE, 3, 300 + len(EXPRESSIONS)), np.float32)
    shapedirs[:, :, :SHAPES] = ict["identity_basis"][:SHAPES, :N_FACE].astype(np.float64).transpose(1, 2, 0) / 100
    for k, name in enumerate(EXPRESSIONS):
        shapedirs[:, :, 300 + k] = ict["expression_basis"][names.index(name), :N_FACE].astype(np.float64) / 100
    joints = _joints(v)
    weights = np.zeros((N_FACE, 5))
    chin = v[:, 1] < joints[2, 1]
    weights[chin, 2], weights[~chin, 0] = 1.0, 1.0
    data = {
        "v_template": v,
        "shapedirs": shapedirs,
        "posedirs": np.zeros((N_FACE, 3, 36), np.float32),
        "J_regressor": _regressor(v, joints),
        "weights": weights,
        "kintree_table": np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64),
        "f": faces[keep].astype(np.uint32),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }
    pkl = folder / "generic_model.pkl"
    with open(pkl, "wb") as fh:
        pickle.dump(data, fh, protocol=2)
    # the ICT embedding's points on the kept triangles, re-indexed into the new face list
    emb = load_ict_embedding()
    new_index = np.full(len(faces), -1)
    new_index[keep] = np.arange(int(keep.sum()))
    face_ids = new_index[emb.embedding.face_ids.numpy()]
    on = face_ids >= 0
    np.savez(
        folder / "mediapipe_landmark_embedding.npz",
        lmk_face_idx=face_ids[on],
        lmk_b_coords=emb.embedding.bary.numpy()[on],
        landmark_indices=emb.landmark_ids.numpy()[on],
    )
    return pkl
