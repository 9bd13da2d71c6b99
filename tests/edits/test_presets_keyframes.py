"""Presets, keyframes and the edit plan: values at given times, round trips, and clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.edits import (
    EditPlan,
    EditPreset,
    PresetError,
    load_keyframes,
    load_preset,
    save_preset,
    shipped_names,
    shipped_presets,
)
from core.edits.gaze import camera_gaze
from core.edits.keyframes import smoothstep


def _base(model, frames: int):
    """A clip's worth of fitted-looking parameters: yaw and smile vary per frame."""
    p = model.neutral(frames)
    p.head[:, 0] = torch_linspace(-10, 10, frames)
    idx = model.expression_names.index("mouthSmile_L")
    p.expression[:, idx] = torch_linspace(0.0, 0.4, frames)
    return p


def torch_linspace(a, b, n):
    import torch

    return torch.linspace(a, b, n)


# ------------------------------------------------------------------------------------------ presets
def test_shipped_presets_load_and_round_trip(ict_model, tmp_path):
    names = shipped_names()
    assert {"neutral", "smile", "surprise", "sad", "look_at_camera", "wink"} <= set(names)
    presets = shipped_presets(ict_model)
    assert set(presets) == set(names)
    for name, preset in presets.items():
        path = save_preset(preset, tmp_path / f"{name}.json", ict_model)
        data = json.loads(path.read_text())
        assert data["format"] == "gdpw-edits/1" and data["mode"] in ("absolute", "offset")
        again = load_preset(path, ict_model)
        assert again.controls == preset.controls and again.mode == preset.mode
        assert again.look_at_camera == preset.look_at_camera
    assert presets["look_at_camera"].look_at_camera and not presets["smile"].look_at_camera
    assert presets["wink"].controls["eyeBlink_L"] == 1.0 and presets["wink"].controls["eyeBlink_R"] == 0.0


def test_preset_by_name_and_from_text(ict_model):
    assert load_preset("smile", ict_model).controls["smile"] == pytest.approx(0.7)
    text = EditPreset({"yaw": 5.0}, "offset").dumps()
    assert load_preset(text, ict_model).controls == {"yaw": 5.0}


BAD_PRESETS = [
    (
        {"format": "gdpw-edits/1", "mode": "absolute", "controls": {"smyle": 0.5}},
        ["smyle", "valid controls", "smile [0, 1]"],
    ),
    ({"format": "gdpw-edits/1", "mode": "absolute", "controls": {"yaw": "left"}}, ["yaw", "needs a number"]),
    ({"format": "gdpw-edits/1", "mode": "absolute", "controls": {"yaw": float("nan")}}, ["yaw", "finite"]),
    ({"format": "gdpw-edits/1", "mode": "absolute", "controls": {"yaw": 90}}, ["yaw", "[-45, 45]"]),
    ({"format": "gdpw-edits/1", "mode": "sideways", "controls": {}}, ["mode"]),
    ({"format": "other/2", "controls": {}}, ["format"]),
    ({"format": "gdpw-edits/1", "controls": [1, 2]}, ["controls"]),
]


@pytest.mark.parametrize("data,words", BAD_PRESETS)
def test_bad_presets_say_what_is_wrong(ict_model, tmp_path, data, words):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))  # json writes NaN as NaN, which Python's json reads back
    with pytest.raises(PresetError) as err:
        load_preset(path, ict_model)
    msg = str(err.value)
    assert str(path) in msg
    for w in words:
        assert w in msg


def test_preset_not_json_and_missing(ict_model, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{format: gdpw")
    with pytest.raises(PresetError, match="not JSON"):
        load_preset(path, ict_model)
    with pytest.raises(PresetError, match="no such"):
        load_preset(tmp_path / "absent.json", ict_model)


def test_save_refuses_a_bad_preset_and_writes_nothing(ict_model, tmp_path):
    with pytest.raises(PresetError):
        save_preset(EditPreset({"yaw": 400.0}), tmp_path / "p.json", ict_model)
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------------------------------ keyframes
def test_interpolations_at_given_times(ict_model):
    keys = {
        "format": "gdpw-keys/1",
        "mode": "absolute",
        "controls": {
            "yaw": {"interpolation": "linear", "keys": [[1, 0], [3, 20]]},
            "pitch": {"interpolation": "hold", "keys": [[0, 5], [2, -5]]},
            "roll": {"interpolation": "smooth", "keys": [[0, 0], [4, 10]]},
        },
    }
    k = load_keyframes(keys, ict_model)
    t = np.array([0.0, 1.0, 1.5, 2.0, 2.999, 3.0, 5.0])
    np.testing.assert_allclose(k.tracks["yaw"](t), [0, 0, 5, 10, 19.99, 20, 20], atol=1e-9)
    np.testing.assert_allclose(k.tracks["pitch"](t), [5, 5, 5, -5, -5, -5, -5])
    np.testing.assert_allclose(
        k.tracks["roll"](np.array([0, 1, 2, 3, 4, 6.0])), 10 * smoothstep(np.array([0, 0.25, 0.5, 0.75, 1, 1]))
    )
    assert k.tracks["roll"](np.array([1.0]))[0] == pytest.approx(10 * 0.15625)


def test_range_eases_in_and_out(ict_model):
    k = load_keyframes(
        {"format": "gdpw-keys/1", "ranges": [{"start": 1, "end": 3, "ease": 0.5, "controls": {"smile": 0.5}}]},
        ict_model,
    )
    w = k.ranges[0].weight(np.array([0.5, 1.0, 1.25, 1.5, 2.0, 2.75, 3.0, 3.5]))
    np.testing.assert_allclose(w, [0, 0, 0.5, 1, 1, 0.5, 0, 0])


BAD_KEYS = [
    ('{"smyle": [[0, 0.1]]}', ["smyle", "valid controls"]),
    ('{"yaw": [[0, "a"]]}', ["yaw", "number"]),
    ('{"yaw": [[0, NaN]]}', ["yaw", "finite"]),
    ('{"mouthSmile_L": [[0, 0.2], [1, 3.0]]}', ["mouthSmile_L", "[-1, 1]"]),
    ('{"yaw": [[2, 0], [1, 5]]}', ["increase"]),
    ('{"yaw": [[0, 0], [0, 5]]}', ["increase"]),
    ('{"yaw": 5}', ["list"]),
    ('{"yaw": [[0, 1, 2]]}', ["[time_s, value]"]),
    ("[1, 2]", ["JSON object"]),
    ("yaw: 1", ["not JSON"]),
    ('{"format": "gdpw-keys/1", "ranges": [{"start": 2, "end": 1, "controls": {"yaw": 1}}]}', ["start < end"]),
    ('{"format": "gdpw-keys/1", "interpolation": "cubic", "controls": {"yaw": [[0, 1]]}}', ["interpolation"]),
]


@pytest.mark.parametrize("text,words", BAD_KEYS)
def test_bad_keyframes_say_what_is_wrong(ict_model, tmp_path, text, words):
    path = tmp_path / "keys.json"
    path.write_text(text)
    with pytest.raises(PresetError) as err:
        load_keyframes(path, ict_model)
    for w in words:
        assert w in str(err.value)


# ------------------------------------------------------------------------------------------ plan
def test_offsets_add_to_each_frame_and_overrides_replace(ict_model):
    base = _base(ict_model, 5)
    times = np.arange(5) / 5.0
    plan = EditPlan.build(ict_model, {"yaw": 10}, mode="offset")
    vals = plan.values_at(ict_model, base, times)
    np.testing.assert_allclose(vals["yaw"], np.linspace(-10, 10, 5) + 10, atol=1e-5)
    plan = EditPlan.build(ict_model, {"yaw": 10, "mouthSmile_L": 0.9}, mode="absolute")
    vals = plan.values_at(ict_model, base, times)
    np.testing.assert_allclose(vals["yaw"], 10, atol=1e-5)
    np.testing.assert_allclose(vals["mouthSmile_L"], 0.9, atol=1e-6)


def test_offsets_are_clamped_and_multi_target_controls_move_each_target(ict_model):
    base = _base(ict_model, 3)
    base.gaze[:, 0, 0] = 5.0  # the eyes look in different directions
    base.gaze[:, 1, 0] = -5.0
    plan = EditPlan.build(ict_model, {"smile": 0.8, "gaze_yaw": 10}, mode="offset")
    out = plan.apply(ict_model, base, np.zeros(3))
    i, j = ict_model.expression_names.index("mouthSmile_L"), ict_model.expression_names.index("mouthSmile_R")
    np.testing.assert_allclose(out.expression[:, i].numpy(), [0.8, 1.0, 1.0], atol=1e-6)  # 0.4 + 0.8 clamped
    np.testing.assert_allclose(out.expression[:, j].numpy(), 0.8, atol=1e-6)
    np.testing.assert_allclose(out.gaze[:, :, 0].numpy(), [[15, 5]] * 3, atol=1e-5)


def test_keys_and_ranges_in_a_plan(ict_model):
    base = _base(ict_model, 9)
    times = np.linspace(0, 4, 9)
    keys = {
        "format": "gdpw-keys/1",
        "mode": "offset",
        "interpolation": "linear",
        "controls": {"pitch": [[0, 0], [4, 8]]},
        "ranges": [{"start": 1, "end": 3, "ease": 0.5, "controls": {"roll": 6}}],
    }
    plan = EditPlan.build(ict_model, keys=load_keyframes(keys, ict_model))
    vals = plan.values_at(ict_model, base, times)
    np.testing.assert_allclose(vals["pitch"], 2 * times, atol=1e-5)
    np.testing.assert_allclose(vals["roll"], [0, 0, 0, 6, 6, 6, 0, 0, 0], atol=1e-5)
    absolute = load_keyframes({"yaw": [[0, 30], [4, 30]]}, ict_model, mode="absolute")
    vals = EditPlan.build(ict_model, keys=absolute).values_at(ict_model, base, times)
    np.testing.assert_allclose(vals["yaw"], 30, atol=1e-5)


def test_bad_set_values_name_the_controls(ict_model):
    with pytest.raises(PresetError, match="valid controls"):
        EditPlan.build(ict_model, {"yawn": 3})
    with pytest.raises(PresetError, match=r"\[-90, 90\]"):
        EditPlan.build(ict_model, {"yaw": 200}, mode="offset")


def test_camera_gaze_cancels_the_head_turn(ict_model):
    p = ict_model.apply_edits(ict_model.neutral(), {"yaw": 15, "pitch": 8})
    g = camera_gaze(ict_model, p)
    assert g["gaze_left_yaw"] == pytest.approx(-15, abs=0.5) and g["gaze_right_pitch"] == pytest.approx(-8, abs=0.5)
    assert camera_gaze(ict_model, ict_model.neutral())["gaze_left_yaw"] == pytest.approx(0, abs=1e-6)


def test_jitter_is_zero_for_still_and_linear_motion_and_grows_with_shake():
    from core.edits.jitter import landmark_jitter

    t = np.arange(10, dtype=np.float64)[:, None, None]
    still = np.zeros((10, 5, 2))
    linear = still + 2.0 * t
    shake = linear + np.where(np.arange(10) % 2 == 0, 1.0, -1.0)[:, None, None]
    assert landmark_jitter(still) == 0 and landmark_jitter(linear) == pytest.approx(0, abs=1e-12)
    assert landmark_jitter(shake) == pytest.approx(4 * np.sqrt(2))
    shake[3] = np.nan  # a frame without a face drops the accelerations that need it
    assert landmark_jitter(shake) == pytest.approx(4 * np.sqrt(2))


def test_look_at_camera_follows_each_frame_head(ict_model):
    base = _base(ict_model, 5)  # yaw from -10 to 10 degrees
    plan = EditPlan.build(ict_model, {"yaw": 5}, mode="offset", preset="look_at_camera")
    vals = plan.values_at(ict_model, base, np.zeros(5))
    np.testing.assert_allclose(vals["gaze_left_yaw"], -(np.linspace(-10, 10, 5) + 5), atol=0.05)
    np.testing.assert_allclose(vals["gaze_right_yaw"], vals["gaze_left_yaw"])
    with pytest.raises(PresetError, match="look_at_camera"):
        load_preset({"format": "gdpw-edits/1", "look_at_camera": "yes", "controls": {}}, ict_model)
