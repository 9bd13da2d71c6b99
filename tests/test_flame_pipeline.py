"""FLAME is a choice everywhere: fit, edit and CLI on a face-like FLAME-format file (tests/flame_helpers.py)."""

import json

import numpy as np
import pytest

from core.animator import Animator


@pytest.fixture(scope="module")
def flame_animator(flame_model):
    from core.io.examples import default_portrait

    anim = Animator(model=flame_model)
    anim.load_source(default_portrait())
    return anim


def test_fitting_uses_flames_own_embedding(flame_animator, flame_model):
    fit = flame_animator.source.fit
    assert fit.params.expression.shape == (1, flame_model.n_expression)
    assert fit.quality["landmark_error"] < 0.03  # the embedding beside the model file was found and fits
    assert flame_model.n_expression == 10  # what the file has (FLAME 2020 has 100; 50 are used by default)


def test_flame_controls_edit_the_portrait(flame_animator, flame_model):
    controls = flame_model.controls()
    assert {"jaw_open", "exp000", "gaze_left_yaw", "shape009", "neck_yaw"} <= set(controls)
    assert controls["jaw_open"].maximum == 30  # degrees, FLAME's own range
    base = flame_animator.render({})
    crop = flame_animator.source.fit.crop_image
    assert np.abs(base.astype(int) - crop).mean() < 1.5
    opened = flame_animator.render({"exp000": 2.0})  # the face-like file's first expression opens the jaw
    face = flame_animator.source.fit.vertices[0, :, :2].numpy()
    x0, y0 = face.min(0).clip(0, 255).astype(int)
    x1, y1 = face.max(0).clip(0, 255).astype(int)
    assert np.abs(opened.astype(int) - base)[y0:y1, x0:x1].mean() > 3


def test_cli_takes_the_flame_model(face_like_flame, tmp_path, capsys):
    from core.cli import main

    out = tmp_path / "flame.png"
    assert (
        main(
            [
                "edit",
                "DEFAULT",
                "--model",
                "flame",
                "--model-path",
                str(face_like_flame),
                "--set",
                "exp000=1.5",
                "--crop",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["size"] == [256, 256]
    assert main(["mesh", "--model", "flame", "--model-path", str(face_like_flame), "--list"]) == 0
    assert "exp009" in capsys.readouterr().out
    assert (
        main(
            [
                "edit",
                "DEFAULT",
                "--model",
                "flame",
                "--model-path",
                str(face_like_flame),
                "--set",
                "jawOpen=0.5",
                "--out",
                str(tmp_path / "x.png"),
            ]
        )
        == 2
    )  # an ICT control: a clear error
    assert "unknown control 'jawOpen' for the flame model" in capsys.readouterr().err
