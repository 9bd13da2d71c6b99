"""Video fitting: one-euro smoothing, gaps, crops, a real clip (MediaPipe tracking)."""

import numpy as np
import pytest
import torch

from core.fit.tracking import OneEuro, clip_crops, fit_video, interpolate_missing, one_euro, smooth_zero_phase

CLIP = "samples__source_video__video__KristiNoem.mp4"


def test_one_euro_smooths_noise_and_follows_motion():
    rng = np.random.default_rng(0)
    t = np.arange(300) / 30.0
    slow = 5 * np.sin(2 * np.pi * 0.3 * t)
    noisy = slow + rng.normal(0, 0.5, len(t))
    f = OneEuro(min_cutoff=1.0, beta=0.3)
    out = smooth_zero_phase(noisy[:, None], 30.0, f)[:, 0]
    assert np.std(out - slow) < 0.65 * np.std(noisy - slow)
    assert np.allclose(one_euro(np.full((20, 2), 3.0), 30.0, f), 3.0)
    # a fast jump is followed within a few frames (the cutoff rises with speed)
    step = np.r_[np.zeros(30), np.full(30, 50.0)][:, None]
    causal = one_euro(step, 30.0, f)[:, 0]
    assert causal[40] > 45
    # zero-phase: no lag on a ramp
    ramp = np.linspace(0, 10, 60)[:, None]
    assert np.abs(smooth_zero_phase(ramp, 30.0, f)[5:-5, 0] - ramp[5:-5, 0]).max() < 0.05


def test_interpolate_missing():
    values = np.array([[0.0], [np.nan], [np.nan], [3.0], [np.nan]])
    known = np.array([True, False, False, True, False])
    assert interpolate_missing(values, known)[:, 0].tolist() == [0, 1, 2, 3, 3]


def test_clip_crops_modes():
    pts = np.zeros((5, 478, 3))
    pts[:, :, :2] = np.random.default_rng(0).uniform(100, 200, (478, 2))
    pts[:, :, 0] += np.arange(5)[:, None] * 10  # the face drifts right
    known = np.ones(5, bool)
    fixed = clip_crops(pts, known, 256, "fixed", 25.0)
    assert np.allclose(fixed, fixed[:1])
    per = clip_crops(pts, known, 256, "per_frame", 25.0)
    assert per[0, 0, 2] > per[-1, 0, 2]
    with pytest.raises(ValueError, match="crop_mode"):
        clip_crops(pts, known, 256, "wobbly", 25.0)


@pytest.fixture(scope="module")
def clip_frames(samples):
    pytest.importorskip("mediapipe")
    from core.io.video import read_video

    frames, info = read_video(samples / "videos" / CLIP, max_frames=40)
    return frames, info


def test_fit_video_with_gaps(clip_frames, ict_model):
    frames, info = clip_frames
    frames = [f.copy() for f in frames]
    for t in (10, 11, 12):
        frames[t][:] = 128  # no face: interpolated and flagged
    result = fit_video(frames, ict_model, fps=info.fps, progress=False)
    assert len(result) == 40 and result.fps == info.fps
    assert result.detected.sum() == 37 and not result.detected[10:13].any()
    assert np.isnan(result.landmarks[11]).all()
    p = result.params
    assert torch.equal(p.shape[0], p.shape[-1])  # one identity
    lo, hi = torch.minimum(p.head[9], p.head[13]) - 1, torch.maximum(p.head[9], p.head[13]) + 1
    assert torch.all((p.head[11] >= lo) & (p.head[11] <= hi))  # interpolated between the neighbours
    q = result.quality
    assert q["frames"] == 40 and q["detected_frames"] == 37 and q["mean_error"] < 0.015
    assert np.isnan(q["errors"][11]) and result.crops.shape == (40, 3, 3)
    verts = result.vertices(slice(0, 3))
    assert verts.shape == (3, ict_model.n_vertices, 3)
    assert result.crop_frame(frames[0], 0).shape == (256, 256, 3)


def test_smoothing_reduces_jitter(clip_frames, ict_model):
    frames, info = clip_frames
    raw = fit_video(frames, ict_model, fps=info.fps, smoothing=False, progress=False)
    smooth = fit_video(frames, ict_model, fps=info.fps, smoothing=True, progress=False)

    def jitter(result):
        v = result.vertices()[:, :6706, :2]
        return float((v[1:] - v[:-1]).norm(dim=-1).mean())

    assert jitter(smooth) < 0.85 * jitter(raw)
    assert smooth.quality["mean_error"] < raw.quality["mean_error"] + 0.003


def test_fit_video_file_and_no_face(samples, ict_model, tmp_path):
    pytest.importorskip("mediapipe")
    from core.fit import NoFaceError
    from core.io.video import write_video

    result = fit_video(samples / "videos" / CLIP, ict_model, max_frames=8, progress=False, crop_mode="smooth")
    assert len(result) == 8 and result.fps == pytest.approx(30.0)
    path = result.save(tmp_path / "clip.npz")
    with np.load(path) as data:
        assert data["shape"].shape[0] == 8 and data["crops"].shape == (8, 3, 3)
    blank = tmp_path / "blank.mp4"
    write_video(blank, [np.full((64, 64, 3), 90, np.uint8)] * 5, fps=10)
    with pytest.raises(NoFaceError, match="blank.mp4"):
        fit_video(blank, ict_model, progress=False)
