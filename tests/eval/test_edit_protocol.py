"""The edit protocol's metrics on cases with known answers."""

import csv
import json
import math

import numpy as np
import pytest
import torch

from core.eval.edits import EDIT_GRID, EditCase, evaluate_edits, requested_values, stretch_fraction


def _flow_from_map(fn, size=64):
    """Normalised backward flow of the pixel map ``fn(x, y) -> (x', y')``."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    sx, sy = fn(x, y)
    px = np.stack([sx - x, sy - y])
    return torch.from_numpy(px / (size / 2.0))[None]


def test_stretch_of_known_maps():
    assert stretch_fraction(None)[0] == 0.0
    assert stretch_fraction(torch.zeros(1, 2, 32, 32))[0] == 0.0  # nothing moves
    assert stretch_fraction(_flow_from_map(lambda x, y: (x + 5.0, y - 3.0)))[0] == 0.0  # a shift keeps areas
    assert stretch_fraction(_flow_from_map(lambda x, y: (x / 4.0, y / 4.0)))[0] == 1.0  # 16x the area
    assert stretch_fraction(_flow_from_map(lambda x, y: (x / 1.5, y)))[0] == 0.0  # 1.5x: not stretched
    assert stretch_fraction(_flow_from_map(lambda x, y: (64 - x, y)))[0] == 1.0  # mirrored: a fold


def test_made_up_pixels_are_not_stretch_but_synth():
    flow = _flow_from_map(lambda x, y: (x / 4.0, y / 4.0))  # every pixel stretched 16x
    made = torch.zeros(1, 1, 64, 64)
    assert stretch_fraction(flow, made) == (1.0, 0.0)
    made[..., :32, :] = 1.0  # the top half made up instead of warped
    stretch, synth = stretch_fraction(flow, made)
    assert stretch == 1.0 and synth == pytest.approx(0.5, abs=0.02)
    assert stretch_fraction(flow, torch.ones(1, 1, 64, 64)) == (0.0, 1.0)
    assert stretch_fraction(torch.zeros(1, 2, 64, 64), torch.zeros(1, 1, 64, 64)) == (0.0, 0.0)


def test_grid_and_requested_values(ict_model):
    names = [c.name for c in EDIT_GRID]
    assert {
        "yaw+30",
        "yaw-30",
        "pitch+20",
        "pitch-20",
        "roll+15",
        "jawOpen 0.7",
        "smile 0.9",
        "gaze +25",
        "blink 1",
        "shape000 +3",
        "shape000 -3",
    } <= set(names) and len(names) == len(set(names))
    params = ict_model.apply_edits(ict_model.neutral(), {"yaw": 7.0})
    assert requested_values(ict_model, params, EditCase("yaw+10", {"yaw": 10.0}, offset=True)) == {"yaw": 17.0}
    assert requested_values(ict_model, params, EditCase("blink", {"blink": 1.0})) == {"blink": 1.0}


def test_zero_edit_measures_nothing_and_a_turn_measures_its_angle(samples, ict_model):
    pytest.importorskip("dlib")
    portrait = samples / "images" / "assets__examples__source__s1.jpg"
    grid = (
        EditCase("none", {}),
        EditCase("yaw+0", {"yaw": 0.0}, offset=True),
        EditCase("yaw+15", {"yaw": 15.0}, offset=True),
    )
    rows, summary = evaluate_edits([portrait], grid=grid, model=ict_model, progress=False)
    zero, still, turn = rows
    assert zero["detected"] == 1.0 and zero["accuracy"] == 0.0 and zero["stretch"] == 0.0 and zero["synth"] == 0.0
    assert zero["id_dist"] == pytest.approx(0.0, abs=1e-6) and zero["cycle_l1"] < 0.002 and zero["floor"] == 0.0
    # asking for the fitted yaw again: the shaded renders before and after are the same, so is their reading
    assert still["accuracy"] == 0.0 and still["floor"] == 0.0
    assert turn["detected"] == 1.0 and turn["accuracy"] < 3.0  # within 3 degrees of the request
    assert 0.0 < turn["floor"] < 3.0  # the fitter reads its own mesh turned 15 degrees about as well
    assert 0.0 <= turn["stretch"] < 0.5 and turn["cycle_l1"] > zero["cycle_l1"]
    assert summary["edits"]["yaw+15"]["n"] == 1 and summary["portraits"] == 1


def test_cli_edit_protocol(samples, tmp_path, capsys):
    pytest.importorskip("dlib")
    from core.cli import main

    folder = tmp_path / "portraits"
    folder.mkdir()
    (folder / "s1.jpg").symlink_to(samples / "images" / "assets__examples__source__s1.jpg")
    (folder / "notes.txt").write_text("not an image")
    out = tmp_path / "edits.csv"
    assert (
        main(
            [
                "evaluate",
                "--protocol",
                "edit",
                "--images",
                str(folder),
                "--edits",
                "jawOpen 0.7",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "| jawOpen 0.7 | 1 |" in printed
    summary = json.loads(out.with_name("edits.summary.json").read_text())
    assert summary["edits"]["jawOpen 0.7"]["detected"] == 1.0
    assert not math.isnan(summary["edits"]["jawOpen 0.7"]["accuracy"])
    with open(out, newline="") as fh:  # the CSV has the edit protocol's own columns, filled
        (row,) = list(csv.DictReader(fh))
    assert row["portrait"] == "s1.jpg" and row["edit"] == "jawOpen 0.7" and row["engine"] == "geometry"
    assert float(row["detected"]) == 1.0 and float(row["accuracy"]) == pytest.approx(
        summary["edits"]["jawOpen 0.7"]["accuracy"], rel=1e-5
    )
    assert (
        main(["evaluate", "--protocol", "edit", "--images", str(folder), "--edits", "yaw+99", "--out", str(out)]) == 2
    )
    assert "control 'yaw' takes an offset in" in capsys.readouterr().err


def test_box_overlap():
    from core.eval.edits import box_overlap

    assert box_overlap((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_overlap((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert box_overlap((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0


def test_refit_measures_the_edited_face_not_a_larger_one(samples, ict_model):
    """With a second, larger face in the edited photo, the refit is of the face over the source's."""
    pytest.importorskip("mediapipe")
    from PIL import Image

    from core.animator import Animator
    from core.eval.edits import EditRunner, face_box
    from core.fit.landmarks import LandmarkDetector
    from core.io.image import load_image

    anim = Animator(model=ict_model)
    anim.load_source(samples / "images" / "assets__examples__source__s1.jpg")
    photo = anim.source.original
    other = load_image(samples / "images" / "examples__obama2.jpg")
    h = photo.shape[0]
    scale = 1.6 * h / other.shape[0]  # larger than the source's face
    big = np.asarray(Image.fromarray(other).resize((round(other.shape[1] * scale), round(other.shape[0] * scale))))
    canvas = np.full((big.shape[0], photo.shape[1] + big.shape[1], 3), 255, np.uint8)
    canvas[:h, : photo.shape[1]] = photo
    canvas[:, photo.shape[1] :] = big
    with LandmarkDetector(video=False) as det:
        refit = EditRunner(anim, None, det).refit(canvas, "two faces")
    assert refit.quality["faces_found"] >= 2
    x0, _, x1, _ = face_box(refit)
    assert x1 <= photo.shape[1]  # the left face: the source's, not the larger one on the right
