"""Nonsense values get a clear one-line error (exit 2) before any work, and nothing is written."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from core.cli import main


@pytest.mark.parametrize(
    "argv, message",
    [
        (["mesh", "--set", "yaw=nan"], "control 'yaw' needs a finite number"),
        (["mesh", "--set", "yaw=inf"], "control 'yaw' needs a finite number"),
        (["mesh", "--set", "jawOpen=1e9"], "control 'jawOpen' takes a value in [0, 1]"),
        (["mesh", "--set", "shape000=1e6"], "control 'shape000' takes a value in"),
        (["edit", "DEFAULT", "--set", "yaw=nan"], "control 'yaw' needs a finite number"),
        (["edit", "DEFAULT", "--set", "yaw=1e9"], "control 'yaw' takes a value in"),
        (["animate", "DEFAULT", "--preset", "nod", "--fps", "0"], "fps must be a finite frame rate"),
        (["animate", "DEFAULT", "--preset", "nod", "--fps", "inf"], "fps must be a finite frame rate"),
        (["animate", "DEFAULT", "--preset", "nod", "--fps", "nan"], "fps must be a finite frame rate"),
        (["animate", "DEFAULT", "--preset", "nod", "--fps", "1000"], "fps must be a frame rate in (0, 120]"),
        (["animate", "DEFAULT", "--preset", "nod", "--seconds", "-5"], "seconds must be a duration in (0, 600]"),
        (["animate", "DEFAULT", "--preset", "nod", "--seconds", "1e9"], "seconds must be a duration in (0, 600]"),
    ],
)
def test_bad_values_are_refused(ict_model, tmp_path, capsys, argv, message):
    suffix = ".obj" if argv[0] == "mesh" else ".png" if argv[0] == "edit" else ".mp4"
    out = tmp_path / f"out{suffix}"
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "command", [["mesh"], ["edit", "DEFAULT"], ["animate", "DEFAULT", "--preset", "nod"], ["frontalize", "DEFAULT"]]
)
def test_a_folder_as_out_is_refused(ict_model, tmp_path, capsys, command):
    assert main([*command, "--out", str(tmp_path)]) == 2
    assert "is a folder; give a file name inside it" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_api_refuses_nan_and_out_of_range_edits(ict_model):
    from core.animator import Animator, Source
    from core.face import EditError

    anim = Animator(model=ict_model)
    fit = SimpleNamespace(params=ict_model.neutral())  # params_for needs only the fitted params
    anim.use_source(Source(np.zeros((8, 8, 3), np.uint8), fit, None, anim.engine_name))
    for edits in ({"yaw": float("nan")}, {"jawOpen": 1e9}, {"yaw": "left"}):
        with pytest.raises(EditError):
            anim.params_for(edits)
    with pytest.raises(ValueError, match="fps"):
        anim.preset_params("nod", seconds=1, fps=float("inf"))
    assert float(anim.params_for({"yaw": 10}).head[0, 0]) == pytest.approx(10.0)
    assert np.isfinite(anim.params_for({}).head.numpy()).all()
