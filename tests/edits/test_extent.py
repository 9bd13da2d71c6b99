"""How far an edit turns the face from the photo's pose, and the warning beyond the measured range."""

import pytest
import torch

from core.edits.extent import TESTED_PITCH_DEG, TESTED_YAW_DEG, head_changes, large_edit_warning
from core.face.params import FIELD_NAMES, FaceParams


def _change(model, source: FaceParams, target: FaceParams) -> tuple[float, float]:
    """The yaw and pitch change of the first rows."""
    yaw, pitch = head_changes(model, source[0], target[0])
    return float(yaw[0]), float(pitch[0])


def _rows(*params: FaceParams) -> FaceParams:
    return FaceParams(**{n: torch.cat([getattr(p, n) for p in params]) for n in FIELD_NAMES})


def test_the_tested_range_is_the_edit_protocols_largest_pose_edits():
    from core.eval.edits import EDIT_GRID

    largest = {c: max(abs(e.values[c]) for e in EDIT_GRID if e.offset and c in e.values) for c in ("yaw", "pitch")}
    assert largest == {"yaw": TESTED_YAW_DEG, "pitch": TESTED_PITCH_DEG}


def test_head_change_reads_the_facing_direction(ict_model):
    m = ict_model
    src = m.apply_edits(m.neutral(), {"yaw": -20.0, "pitch": 5.0})
    assert _change(m, src, src.clone())[0] == pytest.approx(0.0, abs=1e-4)
    turned = m.apply_edits(src, {"yaw": 25.0})
    yaw, pitch = _change(m, src, turned)
    assert yaw == pytest.approx(45.0, abs=0.5) and pitch == pytest.approx(0.0, abs=1.0)
    assert large_edit_warning(m, src, turned) is not None
    assert large_edit_warning(m, src, m.apply_edits(src, {"yaw": 5.0})) is None
    # head and neck turn the face together; a roll hides nothing and does not count
    yaw, pitch = _change(m, m.neutral(), m.apply_edits(m.neutral(), {"yaw": 20.0, "neck_yaw": 15.0, "roll": 30.0}))
    assert yaw == pytest.approx(35.0, abs=0.5) and pitch == pytest.approx(0.0, abs=0.5)
    assert _change(m, m.neutral(), m.apply_edits(m.neutral(), {"pitch": -25.0}))[1] == pytest.approx(-25.0)


def test_warning_only_beyond_the_measured_range(ict_model):
    m = ict_model
    src = m.apply_edits(m.neutral(), {"yaw": -20.0, "pitch": 8.0})
    assert large_edit_warning(m, src, src.clone()) is None
    # the protocol's own largest edits are within the range, even on a turned and tilted head
    for edit in ({"yaw": 10.0}, {"yaw": -50.0}, {"pitch": 28.0}, {"pitch": -12.0}):
        assert large_edit_warning(m, src, m.apply_edits(src, edit)) is None, edit
    # the slider's end on a head already turned the other way: a 65 degree turn
    text = large_edit_warning(m, src, m.apply_edits(src, {"yaw": 45.0}))
    assert text is not None and "turned sideways by 65°" in text and "tilted" not in text
    text = large_edit_warning(m, src, m.apply_edits(src, {"pitch": -20.0, "yaw": 0.0}))
    assert text is not None and "tilted up or down by 28°" in text and "turned" not in text


def test_warning_for_a_video_counts_the_frames_beyond(ict_model):
    m = ict_model
    frames = _rows(*(m.apply_edits(m.neutral(), {"yaw": y}) for y in (-10.0, 0.0, 10.0, 20.0)))
    turned = _rows(*(m.apply_edits(frames[i], {"yaw": float(frames.head[i, 0]) + 25.0}) for i in range(4)))
    assert large_edit_warning(m, frames, turned) is None
    further = turned.clone()
    further.head[2:, 0] += 15.0  # the last two frames turn 40 degrees from their own pose
    text = large_edit_warning(m, frames, further)
    assert text is not None and "by up to 40°" in text and "2 of 4 frames" in text
