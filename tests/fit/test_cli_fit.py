"""``python -m core fit``: npz output and the one-line JSON summary."""

import json

import numpy as np
import pytest

from core.cli import main

pytest.importorskip("mediapipe")


def test_fit_image_command(samples, ict_model, tmp_path, capsys):
    out = tmp_path / "fit.npz"
    assert main(["fit", str(samples / "images" / "examples__obama2.jpg"), "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["faces_found"] == 1 and summary["landmark_error"] < 0.015
    assert {"yaw", "pitch", "roll"} <= set(summary)
    with np.load(out) as data:
        assert data["shape"].shape == (1, ict_model.n_shape) and data["crop"].shape == (3, 3)
        assert data["landmarks"].shape == (478, 3) and json.loads(str(data["quality"]))["faces_found"] == 1


def test_fit_video_command(samples, tmp_path, capsys):
    out = tmp_path / "clip.npz"
    video = samples / "videos" / "samples__source_video__video__Obama_clip1.mp4"
    assert main(["fit", str(video), "--out", str(out), "--max-frames", "12"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["frames"] == 12 and summary["detected_frames"] == 12 and summary["mean_error"] < 0.015
    with np.load(out) as data:
        assert data["head"].shape == (12, 3) and data["detected"].all()


def test_fit_command_no_face(tmp_path, capsys):
    from PIL import Image

    path = tmp_path / "wall.png"
    Image.fromarray(np.full((200, 200, 3), 200, np.uint8)).save(path)
    assert main(["fit", str(path), "--out", str(tmp_path / "x.npz")]) == 2
    assert "wall.png: no face" in capsys.readouterr().err
