"""The autograd fitter (for FLAME) on the small synthetic FLAME file of tests/face, with a made-up embedding."""

import importlib.util
from pathlib import Path

import torch

from core.face import load_face_model
from core.face.base import LandmarkEmbedding
from core.fit.embedding import LandmarkMap
from core.fit.fitter import FitOptions
from core.fit.generic import AutogradFitter


def _synthetic_flame(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "flame_fixture", Path(__file__).resolve().parents[1] / "face" / "test_flame.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = tmp_path / "generic_model.pkl"
    module.write_synthetic_flame(path)
    return load_face_model("flame", path, n_shape=8, n_expression=8)


def test_autograd_fitter_recovers_pose_on_flame(tmp_path):
    model = _synthetic_flame(tmp_path)
    faces = torch.arange(0, 80, 2)[:40]
    lmap = LandmarkMap(
        torch.arange(40) * 11,
        LandmarkEmbedding(faces, torch.full((40, 3), 1 / 3)),
        torch.ones(40),
        torch.zeros(40, dtype=torch.long),
        "synthetic",
    )
    fitter = AutogradFitter(model, lmap, FitOptions(n_shape=8, shape_prior=0.01))
    truth = model.neutral()
    truth.shape[:] = torch.linspace(-1, 1, 8)
    truth.expression[:] = torch.linspace(0.5, -0.5, 8)
    truth.head[:] = torch.tensor([[12.0, -6.0, 4.0]])
    truth.jaw[:] = torch.tensor([[6.0, 0.0]])
    truth.camera[:] = torch.tensor([[0.08, 0.05, -0.02]])
    with torch.no_grad():
        proj = model.project(lmap.embedding.positions(model(truth), model.faces), truth.camera)
    proj[..., 2] -= proj[..., 2].mean()
    state = fitter.fit(proj.double())
    fitted = fitter.project(state)
    err_px = float((fitted[0, :, :2] - proj[0, :, :2].double()).norm(dim=-1).median()) * 128
    assert err_px < 0.5
    assert torch.allclose(state.params.head, truth.head, atol=3.0)
    # tracking a rotated frame from there
    truth.head[:, 0] += 8.0
    with torch.no_grad():
        proj2 = model.project(lmap.embedding.positions(model(truth), model.faces), truth.camera)
    tracked = fitter.track(proj2.double(), state)
    assert abs(float(tracked.params.head[0, 0] - truth.head[0, 0])) < 3.0
    assert fitter.to_params(tracked).batch_size == 1
