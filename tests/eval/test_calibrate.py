"""Blend calibration (``core.eval.calibrate``): the choice and its cross-validation on rows with known
answers, and ``python -m core calibrate-blend`` end to end on two short sample clips with the shipped weights."""

from __future__ import annotations

import csv
import json
import math

import pytest

from core.eval.calibrate import choose_scale


def _rows(table: dict[str, float], ident: str, n: int = 2) -> list[dict]:
    return [{"source_identity": ident, "l1": table[ident], "ssim": 1 - table[ident], "akd": "", "id_dist": "nan"}] * n


def _by_scale(l1: dict[float, dict[str, float]]) -> dict[float, list[dict]]:
    return {s: [r for ident in per for r in _rows(per, ident)] for s, per in l1.items()}


def test_choice_is_the_lowest_mean_and_stable_when_every_fold_agrees():
    l1 = {
        0.0: {"a": 0.10, "b": 0.10, "c": 0.10},
        0.5: {"a": 0.08, "b": 0.08, "c": 0.09},
        1.0: {"a": 0.09, "b": 0.09, "c": 0.09},
    }
    choice = choose_scale(_by_scale(l1))
    assert choice.best == 0.5 and choice.stable and choice.folds == {"a": 0.5, "b": 0.5, "c": 0.5}
    assert choice.means[0.5]["l1"] == pytest.approx(0.25 / 3) and choice.pooled["l1"] == pytest.approx(0.25 / 3)
    assert choice.baseline["l1"] == pytest.approx(0.10) and choice.pooled["ssim"] == pytest.approx(1 - 0.25 / 3)
    assert math.isnan(choice.pooled["akd"]) and math.isnan(choice.means[0.0]["id_dist"])  # not measured
    assert "| 0.5 (chosen) |" in choice.table() and "| 1 |" in choice.table()


def test_folds_that_disagree_are_reported_and_pooled_at_their_own_choice():
    # identity a alone makes 1.0 the best overall; without a, 0.5 wins
    l1 = {
        0.0: {"a": 0.10, "b": 0.10, "c": 0.10},
        0.5: {"a": 0.09, "b": 0.08, "c": 0.08},
        1.0: {"a": 0.05, "b": 0.085, "c": 0.085},
    }
    choice = choose_scale(_by_scale(l1))
    assert choice.best == 1.0 and not choice.stable
    assert choice.folds == {"a": 0.5, "b": 1.0, "c": 1.0}
    assert choice.pooled["l1"] == pytest.approx((0.09 + 0.085 + 0.085) / 3)  # each left out at its fold's choice


def test_ties_go_to_the_smaller_scale_and_empty_input_is_refused():
    same = {"a": 0.1, "b": 0.1}
    assert choose_scale(_by_scale({0.3: same, 0.7: same})).best == 0.3
    with pytest.raises(ValueError, match="no evaluation rows"):
        choose_scale({0.5: []})


@pytest.fixture(scope="module")
def clip_dir(samples, tmp_path_factory):
    pytest.importorskip("dlib")
    pytest.importorskip("mediapipe")
    folder = tmp_path_factory.mktemp("clips")
    for name in (
        "data__style_clip__video__M030_front_neutral_level1_001.mp4",
        "data__style_clip__video__W009_front_neutral_level1_001.mp4",
    ):
        src = samples / "videos" / name
        if not src.is_file():
            pytest.skip(f"sample clip {name} absent")
        (folder / name).symlink_to(src)
    return folder


def test_calibrate_blend_cli(clip_dir, tmp_path, capsys):
    from core.assets import REPO_ROOT
    from core.cli import main

    out, rows_csv = tmp_path / "calibrated", tmp_path / "rows.csv"
    args = ["calibrate-blend", str(REPO_ROOT / "weights"), "--clips", str(clip_dir), "--pairs", "2"]
    args += ["--frames-per-clip", "4", "--scales", "0,1", "--seed", "1", "--rows", str(rows_csv)]
    assert main([*args, "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    with open(rows_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    engines = sorted({r["engine"] for r in rows})
    assert engines == ["alpha_scale=0", "alpha_scale=1", "copy"] and len(rows) == 6
    l1 = {e: sorted(float(r["l1"]) for r in rows if r["engine"] == e) for e in engines}
    assert l1["alpha_scale=0"] != l1["alpha_scale=1"]  # the network's blend does change the output
    meta = json.loads((out / "pwm.json").read_text())
    chosen = 0.0 if sum(l1["alpha_scale=0"]) <= sum(l1["alpha_scale=1"]) else 1.0
    assert meta["alpha_scale"] == chosen and (out / meta["weights"]).is_file()
    assert f"alpha_scale {chosen:g}" in printed and "(chosen)" in printed and "without each identity" in printed
    # bad input is refused before any work
    assert main([*args, "--scales", "0,x"]) == 2
    assert "--scales takes numbers" in capsys.readouterr().err
