"""The committed ICT embedding of MediaPipe's landmarks, FLAME's embedding file, make_embedding helpers."""

import numpy as np
import pytest
import torch

from core.face.ict import REGION_RANGES
from core.fit.embedding import GROUPS, ICT_EMBEDDING, load_flame_embedding, load_ict_embedding
from core.fit.make_embedding import _barycentric, combine


def test_ict_file_is_complete_and_valid(ict_model):
    lmap = load_ict_embedding()
    assert ICT_EMBEDDING.is_file() and ICT_EMBEDDING.stat().st_size < 100_000
    assert len(lmap) == 478 and torch.equal(lmap.landmark_ids, torch.arange(478))
    emb = lmap.embedding
    assert emb.face_ids.min() >= 0 and emb.face_ids.max() < len(ict_model.faces)
    assert torch.allclose(emb.bary.sum(1), torch.ones(478), atol=1e-5) and emb.bary.min() >= 0
    assert lmap.weights.min() > 0 and abs(float(lmap.weights.mean()) - 1) < 1e-4
    verts = ict_model.faces[emb.face_ids]
    skin = verts[:468].max() <= REGION_RANGES["face"][1]
    assert skin, "the 468 mesh points must lie on the face skin"


def test_iris_points_lie_on_their_eyeballs(ict_model):
    lmap = load_ict_embedding()
    verts = ict_model.faces[lmap.embedding.face_ids]
    for side, ids in (("left", range(473, 478)), ("right", range(468, 473))):
        lo, hi = REGION_RANGES[f"eyeball_{side}"]
        assert ((verts[list(ids)] >= lo) & (verts[list(ids)] <= hi)).all(), side
    # turning the eyes to the subject's left moves the iris centres to the image's right (+x)
    params = ict_model.neutral()
    with torch.no_grad():
        p0 = lmap.embedding.positions(ict_model(params), ict_model.faces)
        params.gaze[:, :, 0] = 20.0
        p1 = lmap.embedding.positions(ict_model(params), ict_model.faces)
    assert (p1[0, [468, 473], 0] - p0[0, [468, 473], 0] > 0.3).all()
    assert (p1[0, :468] - p0[0, :468]).abs().max() < 1e-6
    # rim points lie 5.85 mm (MediaPipe's iris) from the centre, left/right/up/down
    rim = (p0[0, 474:478, :2] - p0[0, 473, :2]).norm(dim=-1)
    assert torch.allclose(rim, torch.full((4,), 0.585), atol=0.03)


def test_inner_lips_split_when_the_mouth_opens(ict_model):
    lmap = load_ict_embedding()
    params = ict_model.apply_edits(ict_model.neutral(), {"jawOpen": 1.0})
    with torch.no_grad():
        closed = lmap.embedding.positions(ict_model(ict_model.neutral()), ict_model.faces)[0]
        opened = lmap.embedding.positions(ict_model(params), ict_model.faces)[0]
    upper, lower = 13, 14  # MediaPipe's upper and lower inner-lip midpoints
    assert float(closed[upper, 1] - closed[lower, 1]) < 0.3
    assert float(opened[upper, 1] - opened[lower, 1]) > 1.0
    assert int(lmap.groups[upper]) == GROUPS.index("lips_inner")


def test_flame_embedding_file(tmp_path):
    path = tmp_path / "mediapipe_landmark_embedding.npz"
    ids = np.arange(105) * 4
    np.savez(path, lmk_face_idx=np.arange(105), lmk_b_coords=np.full((105, 3), 1 / 3), landmark_indices=ids)
    lmap = load_flame_embedding(path)
    assert len(lmap) == 105 and torch.equal(lmap.landmark_ids, torch.from_numpy(ids))
    assert lmap.embedding.bary.shape == (105, 3)
    bad = tmp_path / "bad.npz"
    np.savez(bad, lmk_face_idx=np.arange(3))
    with pytest.raises(ValueError, match="missing"):
        load_flame_embedding(bad)
    with pytest.raises(FileNotFoundError):
        load_flame_embedding(tmp_path / "absent.npz")


def test_lifting_helpers():
    tri = np.array([[[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]])
    b = _barycentric(np.array([[2.0, 3.0]]), tri)
    assert b == pytest.approx(np.array([[0.5, 0.2, 0.3]]))
    outside = _barycentric(np.array([[-1.0, 5.0]]), tri)
    assert outside.min() >= 0 and outside.sum() == pytest.approx(1)
    cands = [(k, np.eye(3)[0], np.array([float(k), 0, 0])) for k in (0, 1, 2, 3, 50)]
    face, bary, spread = combine(cands)
    assert face == 2 and spread == pytest.approx(1.0)
