"""The ICT landmark fitter on synthetic landmarks: round trips, bounds, batches, tracking."""

import numpy as np
import pytest
import torch

from core.face.ict import REGION_RANGES
from core.fit.api import fit_landmarks, obs_to_pixels, pixels_to_obs
from core.fit.fitter import FitOptions, LandmarkModel, _rodrigues, umeyama

SIZE = 256
FACE = slice(REGION_RANGES["face_narrow"][0], REGION_RANGES["face_narrow"][1] + 1)


def random_params(model, seed: int, batch: int = 1):
    """The acceptance test's distribution: identity 0-19 in +-2, expressions in [0, 0.8], yaw +-30,
    pitch +-15 (plus roll +-10, gaze +-10 and a random portrait camera)."""
    g = torch.Generator().manual_seed(seed)
    p = model.neutral(batch)
    p.shape[:, :20] = torch.rand(batch, 20, generator=g) * 4 - 2
    p.expression[:] = torch.rand(batch, model.n_expression, generator=g) * 0.8
    p.head[:, 0] = torch.rand(batch, generator=g) * 60 - 30
    p.head[:, 1] = torch.rand(batch, generator=g) * 30 - 15
    p.head[:, 2] = torch.rand(batch, generator=g) * 20 - 10
    p.gaze[:] = torch.rand(batch, 2, 2, generator=g) * 20 - 10
    p.camera[:] = torch.tensor([0.06, 0.0, 0.1]) + (torch.rand(batch, 3, generator=g) - 0.5) * torch.tensor(
        [0.01, 0.1, 0.1]
    )
    return p


def synthetic_landmarks(model, lmap, params) -> np.ndarray:
    """MediaPipe-like landmarks in crop pixels: (u, v) and a depth in pixels relative to the face centre."""
    with torch.no_grad():
        pts = lmap.embedding.positions(model(params), model.faces)
        proj = model.project(pts, params.camera).double()
    proj[..., 2] -= proj[..., 2].mean(-1, keepdim=True)
    return obs_to_pixels(proj, SIZE)


def face_error_mm(model, fitted, truth) -> float:
    """Mean distance of the posed face_narrow vertices in the model frame (camera removed), mm."""
    with torch.no_grad():
        return float((model(fitted)[:, FACE] - model(truth)[:, FACE]).norm(dim=-1).mean()) * 10.0


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_synthetic_round_trip(ict_model, fitter, seed):
    truth = random_params(ict_model, seed)
    pts = synthetic_landmarks(ict_model, fitter.lmap, truth)
    params, fitted = fit_landmarks(pts[0], SIZE, ict_model)
    err = face_error_mm(ict_model, params, truth)
    yaw_err = abs(float(params.head[0, 0] - truth.head[0, 0]))
    assert err < 1.5, f"seed {seed}: face error {err:.2f} mm"
    assert yaw_err < 1.5, f"seed {seed}: yaw error {yaw_err:.2f} deg"
    assert abs(float(params.head[0, 1] - truth.head[0, 1])) < 1.5
    assert np.median(np.linalg.norm(fitted[0, :, :2] - pts[0, :, :2], axis=1)) < 0.2  # pixels
    assert float((params.gaze - truth.gaze).abs().max()) < 3.0
    assert params.expression.min() >= 0 and params.expression.max() <= 1


def test_camera_is_for_the_crop(ict_model, fitter):
    """Projecting the fitted model with params.camera lands on the landmarks (crop normalised coords)."""
    truth = random_params(ict_model, 11)
    pts = synthetic_landmarks(ict_model, fitter.lmap, truth)
    params, _ = fit_landmarks(pts[0], SIZE, ict_model)
    with torch.no_grad():
        proj = ict_model.project(fitter.lmap.embedding.positions(ict_model(params), ict_model.faces), params.camera)
    obs = pixels_to_obs(pts[0], SIZE)
    assert float((proj[0, :, :2].double() - obs[:, :2]).norm(dim=-1).median()) < 0.002


def test_noise_and_outliers(ict_model, fitter):
    """1 px noise and 5 % gross outliers: the robust fit keeps pose and face close."""
    truth = random_params(ict_model, 7)
    pts = synthetic_landmarks(ict_model, fitter.lmap, truth)[0]
    rng = np.random.default_rng(0)
    pts[:, :2] += rng.normal(0, 1.0, (len(pts), 2))
    bad = rng.choice(len(pts), len(pts) // 20, replace=False)
    pts[bad, :2] += rng.uniform(-25, 25, (len(bad), 2))
    params, _ = fit_landmarks(pts, SIZE, ict_model)
    assert abs(float(params.head[0, 0] - truth.head[0, 0])) < 2.0
    assert face_error_mm(ict_model, params, truth) < 4.0


def test_shared_identity_over_frames(ict_model, fitter):
    """One person in three poses: one identity for all, recovered better than from a single frame."""
    truth = random_params(ict_model, 21, batch=3)
    truth.shape[:] = truth.shape[:1]
    pts = synthetic_landmarks(ict_model, fitter.lmap, truth)
    params, _ = fit_landmarks(pts, SIZE, ict_model, shared_shape=True)
    assert torch.equal(params.shape[0], params.shape[1]) and torch.equal(params.shape[0], params.shape[2])
    assert face_error_mm(ict_model, params, truth) < 1.5
    head_err = (params.head - truth.head).abs().max()
    assert head_err < 1.5


def test_tracking_follows_a_sequence(ict_model, fitter):
    """Identity fixed, warm-started frames of a smooth motion: pose and expression follow."""
    base = random_params(ict_model, 3)
    t = torch.linspace(0, 1, 8)
    seq = base.expand(8)
    seq.head[:, 0] = base.head[0, 0] + 15 * torch.sin(2 * torch.pi * t)
    seq.expression[:, ict_model.expression_names.index("jawOpen")] = 0.5 * t
    pts = synthetic_landmarks(ict_model, fitter.lmap, seq)
    obs = pixels_to_obs(pts, SIZE)
    state = fitter.state_from_params(base)
    yaw_errors, face_errors = [], []
    for i in range(len(obs)):
        state = fitter.track(obs[i : i + 1], state)
        p = fitter.to_params(state)
        yaw_errors.append(abs(float(p.head[0, 0] - seq.head[i, 0])))
        face_errors.append(face_error_mm(ict_model, p, seq[i]))
    assert max(yaw_errors) < 1.0
    assert max(face_errors) < 1.0, face_errors


def test_landmark_model_matches_the_face_model(ict_model, fitter):
    """The fitter's own landmark evaluation equals the model's vertices through the embedding."""
    truth = random_params(ict_model, 5)
    st = fitter.state_from_params(truth)
    with torch.no_grad():
        ref = ict_model.project(fitter.lmap.embedding.positions(ict_model(truth), ict_model.faces), truth.camera)
        ours = fitter.project(st)
    assert float((ours - ref.double()).abs().max()) < 1e-4
    back = fitter.to_params(st)
    assert torch.allclose(back.head, truth.head, atol=1e-3)


def test_umeyama_and_rodrigues():
    g = torch.Generator().manual_seed(0)
    src = torch.randn(2, 30, 3, generator=g, dtype=torch.float64)
    rot = _rodrigues(torch.tensor([[0.3, -0.2, 0.1], [0.0, 0.5, 0.0]], dtype=torch.float64))
    dst = 1.7 * src @ rot.transpose(1, 2) + torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    s, r, t = umeyama(src, dst, torch.ones(2, 30, dtype=torch.float64))
    assert torch.allclose(s, torch.full((2,), 1.7, dtype=torch.float64))
    assert torch.allclose(r, rot, atol=1e-10)
    assert torch.allclose(t[0], torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))


def test_options_are_validated(ict_model, fitter):
    with pytest.raises(ValueError, match="n_shape"):
        LandmarkModel(ict_model, fitter.lmap, 0)
    params, _ = fit_landmarks(
        synthetic_landmarks(ict_model, fitter.lmap, random_params(ict_model, 1))[0],
        SIZE,
        ict_model,
        FitOptions(n_shape=10, fit_gaze=False),
    )
    assert params.shape.shape[1] == ict_model.n_shape and params.shape[0, 10:].abs().max() == 0
    assert params.gaze.abs().max() == 0
