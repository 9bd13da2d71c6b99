"""FLAME backend on a small synthetic file in FLAME 2020's pickle format (chumpy arrays, scipy sparse)."""

import os
import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse
import torch
from scipy.spatial.transform import Rotation

from core.face import load_face_model
from core.face.safe_unpickle import UnsafePickleError, safe_load

N_VERTS, N_DIRS = 60, 400
REST_JOINTS = np.array(
    [[0.0, -0.05, 0.0], [0.0, -0.02, -0.01], [0.0, -0.03, 0.02], [0.03, 0.03, 0.04], [-0.03, 0.03, 0.04]]
)  # joint 3: the subject's left eye


def _fake_chumpy():
    """A stand-in 'chumpy.ch' module so the test can write pickles that name chumpy, like FLAME's."""
    chumpy = types.ModuleType("chumpy")
    ch = types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x):
            self.x = x

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    ch.Ch = Ch
    chumpy.ch = ch
    return chumpy, ch


def write_synthetic_flame(path, seed=0):
    rng = np.random.default_rng(seed)
    v = rng.normal(scale=0.05, size=(N_VERTS, 3))
    weights = rng.random((N_VERTS, 5)) ** 4
    weights /= weights.sum(1, keepdims=True)
    # a joint regressor that reproduces REST_JOINTS on the template: each joint from 3 vertices
    rows, cols, vals = [], [], []
    for j in range(5):
        ids = rng.choice(N_VERTS, 3, replace=False)
        # weights summing to 1 whose combination equals the joint: solve a small least-squares system
        m = np.vstack([v[ids].T, np.ones((1, 3))])
        wj = np.linalg.lstsq(m, np.r_[REST_JOINTS[j], 1.0], rcond=None)[0]
        rows += [j] * 3
        cols += ids.tolist()
        vals += wj.tolist()
    j_reg = scipy.sparse.csc_matrix((vals, (rows, cols)), shape=(5, N_VERTS))
    chumpy, ch = _fake_chumpy()
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = chumpy, ch
    try:
        data = {
            "v_template": ch.Ch(v),
            "shapedirs": ch.Ch(rng.normal(scale=0.01, size=(N_VERTS, 3, N_DIRS))),
            "posedirs": rng.normal(scale=0.01, size=(N_VERTS, 3, 36)),
            "J_regressor": j_reg,
            "weights": ch.Ch(weights),
            "kintree_table": np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64),
            "f": rng.integers(0, N_VERTS, size=(80, 3)).astype(np.uint32),
            "bs_style": "lbs",
            "bs_type": "lrotmin",
        }
        with open(path, "wb") as fh:
            pickle.dump(data, fh, protocol=2)
    finally:
        del sys.modules["chumpy"], sys.modules["chumpy.ch"]
    return {k: (val.x if hasattr(val, "x") else val) for k, val in data.items()}


def reference_flame(raw, shape, expr, angles_deg, jaw_deg, gaze_deg):
    """Independent float64 FLAME: scipy rotations, explicit recursion, per-vertex blending."""
    v = raw["v_template"] + raw["shapedirs"][:, :, : len(shape)] @ shape
    v = v + raw["shapedirs"][:, :, 300 : 300 + len(expr)] @ expr
    joints = raw["J_regressor"].toarray() @ v

    def euler(a):  # yaw, pitch, roll -> Ry(yaw) Rx(-pitch) Rz(roll)
        return Rotation.from_euler("YXZ", [a[0], -a[1], a[2]], degrees=True).as_matrix()

    rots = [
        euler(angles_deg["head"]),
        euler(angles_deg["neck"]),
        Rotation.from_euler("YX", [jaw_deg[1], jaw_deg[0]], degrees=True).as_matrix(),
        euler([*gaze_deg[0], 0.0]),
        euler([*gaze_deg[1], 0.0]),
    ]
    feat = np.concatenate([(r - np.eye(3)).ravel() for r in rots[1:]])
    v = v + raw["posedirs"] @ feat
    parents = [-1, 0, 1, 1, 1]
    world_r, world_t = [None] * 5, [None] * 5
    for k in range(5):
        if parents[k] < 0:
            world_r[k], world_t[k] = rots[k], joints[k]
        else:
            p = parents[k]
            world_r[k] = world_r[p] @ rots[k]
            world_t[k] = world_r[p] @ (joints[k] - joints[p]) + world_t[p]
    out = np.zeros_like(v)
    for i in range(len(v)):
        for k in range(5):
            posed = world_r[k] @ (v[i] - joints[k]) + world_t[k]
            out[i] += raw["weights"][i, k] * posed
    return out * 100.0  # metres to cm


@pytest.fixture(scope="module")
def flame(tmp_path_factory):
    path = tmp_path_factory.mktemp("flame") / "generic_model.pkl"
    raw = write_synthetic_flame(path)
    return load_face_model("flame", path, n_shape=20, n_expression=10), raw


def test_flame_file_names_chumpy_but_loads_without_it(flame, tmp_path):
    assert "chumpy" not in sys.modules
    model, raw = flame
    assert model.n_vertices == N_VERTS and model.n_shape == 20 and model.n_expression == 10
    assert torch.allclose(model.v_template.double(), torch.from_numpy(raw["v_template"]) * 100, atol=1e-4)


def test_flame_neutral_is_template(flame):
    model, raw = flame
    verts = model(model.neutral())[0]
    assert torch.allclose(verts.double(), torch.from_numpy(raw["v_template"]) * 100, atol=1e-4)


def test_flame_skinning_matches_independent_computation(flame):
    model, raw = flame
    rng = np.random.default_rng(1)
    shape, expr = rng.normal(size=20), rng.normal(size=10)
    angles = {"head": [20.0, -10.0, 5.0], "neck": [-8.0, 12.0, 3.0]}
    jaw, gaze = [15.0, -4.0], [[10.0, -5.0], [12.0, 3.0]]
    params = model.neutral()
    params.shape[0] = torch.tensor(shape)
    params.expression[0] = torch.tensor(expr)
    params.head[0] = torch.tensor(angles["head"])
    params.neck[0] = torch.tensor(angles["neck"])
    params.jaw[0] = torch.tensor(jaw)
    params.gaze[0] = torch.tensor(gaze)
    ours = model(params)[0].double().numpy()
    ref = reference_flame(raw, shape, expr, angles, jaw, gaze)
    assert np.abs(ours - ref).max() < 1e-3  # cm, float32 against float64


def test_flame_eye_joint_order_and_controls(flame):
    model, _ = flame
    assert model.eye_joints == (3, 4)
    p = model.apply_edits(model.neutral(), {"gaze_yaw": 10, "jaw_open": 5, "yaw": 3})
    rots = model.joint_rotations(p)
    assert not torch.allclose(rots[0, 3], torch.eye(3)) and not torch.allclose(rots[0, 2], torch.eye(3))


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "generic_model.pkl"
    bad.write_bytes(pickle.dumps({"v_template": _Exploit(marker)}, protocol=2))
    with pytest.raises(UnsafePickleError, match="system"):
        safe_load(bad)
    with pytest.raises(UnsafePickleError):
        load_face_model("flame", bad)
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload",
    [
        (eval, ("1+1",)),
        (os.system, ("true",)),
        (__import__, ("subprocess",)),
    ],
)
def test_restricted_unpickler_refuses_builtins(tmp_path, payload):
    class Evil:
        def __reduce__(self):
            return payload

    bad = tmp_path / "evil.pkl"
    bad.write_bytes(pickle.dumps(Evil(), protocol=2))
    with pytest.raises(UnsafePickleError):
        safe_load(bad)


def test_flame_missing_file_and_wrong_content(tmp_path):
    with pytest.raises(FileNotFoundError, match="generic_model.pkl"):
        load_face_model("flame", None)
    not_flame = tmp_path / "x.pkl"
    not_flame.write_bytes(pickle.dumps({"a": np.zeros(3)}))
    with pytest.raises(ValueError, match="not a FLAME model"):
        load_face_model("flame", not_flame)
