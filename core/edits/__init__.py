"""Edits beyond one slider move: readable JSON presets, keyframed curves and the per-frame plan of a video edit.

- ``presets``: ``EditPreset`` (``gdpw-edits/1`` JSON), load/save, the shipped presets, ``PresetError``.
- ``keyframes``: ``Keyframes`` (``keys.json``: control -> [[time_s, value], ...], hold/linear/smooth, eased ranges).
- ``plan``: ``EditPlan`` turning each frame's fitted parameters into its edited target.
- ``gaze``: eyes on the camera whatever the head pose.
- ``video``: ``edit_video``, the two-pass tracked video edit behind ``Animator.edit_video``.
- ``extent``: how far an edit turns the face from the photo's pose, and a warning beyond the measured range.
"""

from core.edits.extent import head_changes, large_edit_warning
from core.edits.keyframes import Keyframes, KeyRange, Track, load_keyframes, parse_keyframes
from core.edits.plan import EditPlan
from core.edits.presets import (
    PRESET_FORMAT,
    EditPreset,
    PresetError,
    control_summary,
    load_preset,
    neutral_values,
    parse_preset,
    save_preset,
    shipped_names,
    shipped_presets,
)

__all__ = [
    "EditPlan",
    "EditPreset",
    "KeyRange",
    "Keyframes",
    "PRESET_FORMAT",
    "PresetError",
    "Track",
    "control_summary",
    "head_changes",
    "large_edit_warning",
    "load_keyframes",
    "load_preset",
    "neutral_values",
    "parse_keyframes",
    "parse_preset",
    "save_preset",
    "shipped_names",
    "shipped_presets",
]
