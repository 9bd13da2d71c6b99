"""The landmarks' view bias: its basis, its least-squares fit, its file, and what it does to the fitter."""

import numpy as np
import pytest
import torch

from core.face.rotation import euler_to_matrix
from core.fit.embedding import ICT_VIEW_BIAS
from core.fit.fitter import FitOptions, LandmarkFitter
from core.fit.view_bias import BASIS_NAMES, ViewBias, fit_view_bias, load_view_bias, view_basis


def test_basis_is_zero_for_a_frontal_head_and_clamped():
    assert torch.equal(view_basis(torch.zeros(2)), torch.zeros(len(BASIS_NAMES)))
    y30 = view_basis(torch.tensor([30.0, 0.0]))
    assert y30.tolist() == [1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0]
    assert torch.equal(view_basis(torch.tensor([90.0, -90.0])), view_basis(torch.tensor([45.0, -45.0])))


def test_fit_recovers_known_coefficients_and_skips_invalid_drifts():
    rng = np.random.default_rng(0)
    k, n_lmk, n = len(BASIS_NAMES), 4, 300
    coef = rng.normal(0, 0.1, (k, n_lmk, 3))
    src = rng.uniform(-10, 10, (n, 2))
    tgt = src + rng.uniform(-30, 30, (n, 2))
    dphi = (view_basis(torch.as_tensor(tgt)) - view_basis(torch.as_tensor(src))).numpy()
    depth_coef = rng.normal(0, 0.2, (k, n_lmk))
    drifts = np.einsum("nk,klc->nlc", dphi, coef)
    depths = dphi @ depth_coef
    valid = np.ones((n, n_lmk), bool)
    valid[::7, 1] = False
    drifts[::7, 1] = 50.0  # junk where marked invalid
    depths[::7, 1] = -50.0
    valid[:, 3] = False  # a landmark never seen: stays at zero
    bias = fit_view_bias(src, tgt, drifts, depths, valid, np.array([5, 9, 2, 7]), ridge=1e-9)
    assert np.allclose(bias.coef.numpy()[:, :3], coef[:, :3], atol=1e-6)
    assert np.allclose(bias.depth.numpy()[:, :3], depth_coef[:, :3], atol=1e-6)
    assert np.all(bias.coef.numpy()[:, 3] == 0.0) and np.all(bias.depth.numpy()[:, 3] == 0.0)
    assert bias.landmark_ids.tolist() == [5, 9, 2, 7]


def test_offsets_follow_yaw_and_pitch_but_not_roll():
    coef = torch.zeros(len(BASIS_NAMES), 1, 3, dtype=torch.float64)
    coef[0, 0, 0] = 0.1  # 1 mm along x per 30 degrees of yaw
    depth = torch.zeros(len(BASIS_NAMES), 1, dtype=torch.float64)
    depth[1, 0] = -0.2  # 2 mm nearer per 30 degrees of pitch
    bias = ViewBias(coef, depth, torch.tensor([1]))
    rot = euler_to_matrix(torch.tensor([[30.0, 0.0, 0.0], [30.0, 0.0, 20.0], [0.0, 0.0, 20.0]], dtype=torch.float64))
    off = bias.offsets(rot)
    assert off.shape == (3, 1, 3)
    assert off[0, 0].tolist() == pytest.approx([0.1, 0.0, 0.0])
    assert off[1, 0].tolist() == pytest.approx([0.1, 0.0, 0.0])
    assert off[2].abs().max() < 1e-12
    nod = euler_to_matrix(torch.tensor([[0.0, 15.0, 0.0], [0.0, 15.0, -30.0]], dtype=torch.float64))
    assert bias.depth_offsets(nod)[:, 0].tolist() == pytest.approx([-0.1, -0.1])
    assert bias.depth_offsets(rot).abs().max() < 1e-12


def test_for_landmarks_reorders_and_fills_missing_with_zero():
    coef = torch.arange(len(BASIS_NAMES) * 2 * 3, dtype=torch.float64).view(len(BASIS_NAMES), 2, 3)
    depth = coef[..., 0] + 0.5
    bias = ViewBias(coef, depth, torch.tensor([10, 20]))
    sub = bias.for_landmarks(torch.tensor([20, 30, 10]))
    assert torch.equal(sub.coef[:, 0], coef[:, 1]) and torch.equal(sub.coef[:, 2], coef[:, 0])
    assert torch.equal(sub.depth[:, 0], depth[:, 1]) and torch.equal(sub.depth[:, 2], depth[:, 0])
    assert torch.equal(sub.coef[:, 1], torch.zeros(len(BASIS_NAMES), 3, dtype=torch.float64))
    assert torch.equal(sub.depth[:, 1], torch.zeros(len(BASIS_NAMES), dtype=torch.float64))
    fixed = sub.without(torch.tensor([True, False, False]))
    assert fixed.coef[:, 0].abs().max() == 0 and fixed.depth[:, 0].abs().max() == 0
    assert torch.equal(fixed.coef[:, 2], sub.coef[:, 2]) and sub.coef[:, 0].abs().max() > 0


def test_file_round_trip_and_bad_files(tmp_path):
    coef = torch.randn(len(BASIS_NAMES), 3, 3, dtype=torch.float64) * 0.1
    depth = torch.randn(len(BASIS_NAMES), 3, dtype=torch.float64) * 0.1
    path = ViewBias(coef, depth, torch.tensor([0, 1, 2])).save(tmp_path / "bias.npz")
    back = load_view_bias(path)
    assert torch.allclose(back.coef, coef, atol=1e-7) and torch.allclose(back.depth, depth, atol=1e-7)
    assert back.landmark_ids.tolist() == [0, 1, 2]
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(ValueError, match="not a landmark view-bias file"):
        load_view_bias(tmp_path / "other.npz")
    k = len(BASIS_NAMES)
    np.savez(tmp_path / "shape.npz", coef=np.zeros((3, 3, 3)), depth=np.zeros((k, 3)), landmark_indices=np.arange(3))
    with pytest.raises(ValueError, match="expected"):
        load_view_bias(tmp_path / "shape.npz")
    bad = np.zeros((k, 3))
    bad[0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", coef=np.zeros((k, 3, 3)), depth=bad, landmark_indices=np.arange(3))
    with pytest.raises(ValueError, match="non-finite"):
        load_view_bias(tmp_path / "nan.npz")


def test_shipped_bias_is_used_by_default(ict_model):
    from core.fit.api import get_fitter

    assert ICT_VIEW_BIAS.is_file()
    fitter = get_fitter(ict_model)
    assert fitter.lmap.view_bias is not None and fitter.bias is not None
    assert fitter.bias.coef[:, fitter.iris].abs().max() == 0.0  # the iris points follow the gaze fit
    assert fitter.bias.depth[:, fitter.iris].abs().max() == 0.0
    frontal = fitter.bias.offsets(torch.eye(3, dtype=torch.float64)[None])
    assert frontal.abs().max() == 0.0
    turned = fitter.bias.offsets(euler_to_matrix(torch.tensor([[30.0, 0.0, 0.0]], dtype=torch.float64)))
    drift = turned[0].norm(dim=-1)
    assert 0.02 < float(drift.median()) < 0.5  # millimetres, as measured; not zero, not centimetres
    assert get_fitter(ict_model, FitOptions(view_bias=False)).bias is None


@pytest.mark.parametrize(("yaw", "pitch"), [(30.0, 0.0), (-30.0, 0.0), (0.0, 20.0), (10.0, -20.0)])
def test_fitter_reads_a_turn_through_the_drift(ict_model, yaw, pitch):
    """Landmarks that drift as the shipped bias says are read at their true pose with the bias, and
    under-read (as MediaPipe's were) without it."""
    biased = LandmarkFitter(ict_model, options=FitOptions(view_bias=str(ICT_VIEW_BIAS)))
    plain = LandmarkFitter(ict_model, options=FitOptions(view_bias=False))
    truth = ict_model.neutral()
    truth.head[0, :2] = torch.tensor([yaw, pitch])
    truth.camera[:] = torch.tensor([0.06, 0.0, 0.05])
    with torch.no_grad():
        obs = biased.project(biased.state_from_params(truth))
        got = biased.to_params(biased.fit(obs)).head[0, :2]
        naive = plain.to_params(plain.fit(obs)).head[0, :2]
    assert (got - truth.head[0, :2]).abs().max() < 0.5
    assert (naive - truth.head[0, :2]).abs().max() > 1.0


def test_make_view_bias_measures_the_drift_of_a_turned_portrait(samples, ict_model, tmp_path):
    """The maker turns a photo with the geometry engine, finds MediaPipe's points off the turned mesh's by
    millimetres, and fits and writes a loadable file from saved drifts."""
    pytest.importorskip("mediapipe")
    from core.fit.make_view_bias import collect, main
    from core.io.image import load_image

    photo = load_image(samples / "images" / "assets__examples__source__s1.jpg")
    data = collect([("s1", photo)], views=((20.0, 0.0), (0.0, -15.0)))
    assert data["drifts"].shape == (2, 478, 3) and data["depth_drifts"].shape == (2, 478)
    assert np.allclose(data["target_views"] - data["source_views"], [[20.0, 0.0], [0.0, -15.0]], atol=1e-3)
    assert data["valid"].mean() > 0.9
    assert 0.01 < float(np.median(np.linalg.norm(data["drifts"], axis=-1))) < 0.5  # cm
    np.savez(tmp_path / "drifts.npz", **data)
    out = tmp_path / "bias.npz"
    assert main(["--from-samples", str(tmp_path / "drifts.npz"), "--out", str(out)]) == 0
    bias = load_view_bias(out)
    assert bias.coef.shape == (len(BASIS_NAMES), 478, 3) and bias.coef.abs().max() > 0
