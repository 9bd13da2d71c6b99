"""Slider bookkeeping: absolute values from the fit, changes only, L/R link, aliases, zoom."""

from __future__ import annotations

import numpy as np
import pytest

from studio.controls import ControlBook, build_specs, link_partner, pretty_label, random_edits


@pytest.fixture(scope="module")
def book(ict_model):
    return ControlBook(ict_model, build_specs(ict_model))


@pytest.fixture
def source(ict_model):
    p = ict_model.neutral()
    p.head[0] = p.head.new_tensor([12.34, -5.0, 2.0])
    p.expression[0, ict_model.expression_names.index("mouthSmile_L")] = 0.0123
    p.shape[0, :3] = p.shape.new_tensor([0.5, -1.0, 2.0])
    return p


def test_specs_cover_the_brief(book):
    names = set(book.names)
    for n in (
        "zoom",
        "yaw",
        "pitch",
        "roll",
        "neck_yaw",
        "jawOpen",
        "jaw_sideways",
        "gaze_yaw",
        "gaze_pitch",
        "blink",
        "mouthSmile_L",
        "browInnerUp_R",
        "cheekPuff_L",
        "noseSneer_R",
        "eyeWide_L",
    ):
        assert n in names, n
    assert [n for n in book.names if n.startswith("shape")] == [f"shape{i:03d}" for i in range(10)]
    assert "jaw_open" not in names  # drives the same thing as jawOpen
    assert {"gaze_left_yaw", "gaze_right_pitch", "smile"} <= names  # per-eye gaze; both smile sides at once
    assert "gaze_left_yaw" in book.related("gaze_yaw")
    sections = {s.section for s in book.specs}
    assert {"pose", "jaw", "gaze", "brows", "eyes", "cheeks", "nose", "mouth", "smile", "shape"} <= sections


def test_labels_and_partners():
    assert pretty_label("mouthSmile_L") == "smile L"
    assert pretty_label("browInnerUp_R") == "inner up R"
    assert pretty_label("mouthLeft") == "mouth left"
    assert link_partner("eyeBlink_L", ["eyeBlink_L", "eyeBlink_R"]) == "eyeBlink_R"
    assert link_partner("mouthLeft", ["mouthLeft", "mouthRight"]) is None


def test_read_is_absolute_and_rounded(book, source):
    v = book.read(source, source)
    assert v["yaw"] == pytest.approx(12.34)
    assert v["zoom"] == 1.0
    assert v["mouthSmile_L"] == pytest.approx(0.012)
    assert v["shape002"] == pytest.approx(2.0)


def test_apply_changes_only_what_moved(book, source):
    shown = book.read(source, source)
    page = dict(shown, mouthSmile_L=0.01)  # the browser snapped the display to its step: not a move
    page["yaw"] = 20.0
    params, values, updates = book.apply(source.clone(), source, shown, page, link=True)
    assert float(params.head[0, 0]) == 20.0
    i = book.model.expression_names.index("mouthSmile_L")
    assert float(params.expression[0, i]) == pytest.approx(0.0123)  # untouched: the fitted value stays
    assert float(params.head[0, 1]) == -5.0
    assert updates == []


def test_link_and_alias(book, source):
    shown = book.read(source, source)
    params, values, updates = book.apply(source.clone(), source, shown, dict(shown, browDown_L=0.6), link=True)
    assert values["browDown_R"] == pytest.approx(0.6) and "browDown_R" in updates
    params, values, updates = book.apply(source.clone(), source, shown, dict(shown, browDown_L=0.6), link=False)
    assert values["browDown_R"] == 0.0 and updates == []
    # blink writes both lids: the per-eye sliders follow, and a wink moves the blink slider (it reads L)
    params, values, updates = book.apply(source.clone(), source, shown, dict(shown, blink=0.9), link=True)
    assert values["eyeBlink_L"] == values["eyeBlink_R"] == pytest.approx(0.9)
    assert {"eyeBlink_L", "eyeBlink_R"} <= set(updates)


def test_zoom_scales_the_camera(book, source):
    shown = book.read(source, source)
    params, values, _ = book.apply(source.clone(), source, shown, dict(shown, zoom=1.2), link=True)
    assert float(params.camera[0, 0]) == pytest.approx(1.2 * float(source.camera[0, 0]))
    assert float(params.camera[0, 1]) == float(source.camera[0, 1])
    assert values["zoom"] == pytest.approx(1.2)


def test_random_edits_are_in_range_and_tasteful(book):
    rng = np.random.default_rng(0)
    for _ in range(20):
        edits = random_edits(book, rng)
        assert abs(edits["yaw"]) <= 20 and abs(edits["pitch"]) <= 10
        assert not any(n.startswith("shape") for n in edits)
        for n, v in edits.items():
            s = book.by_name[n]
            assert s.minimum <= v <= s.maximum
    # a turned portrait is not turned the other way: the pose stays within 25 degrees of its own
    for _ in range(20):
        edits = random_edits(book, rng, {"yaw": 35.0, "pitch": -22.0})
        assert 10.0 <= edits["yaw"] <= 20.0 and -10.0 <= edits["pitch"] <= -7.0
    assert random_edits(book, rng, {"yaw": -45.0})["yaw"] == pytest.approx(-20.0)
