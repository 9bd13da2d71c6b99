"""How far an edit turns the face from the photo's pose, against the range the engines are measured on.

The pose sliders reach yaw +-45 and pitch +-30 degrees whatever the photo's own pose, so a portrait already
turned 20 degrees can be asked for a 65 degree turn. Beyond the edit protocol's largest turns (yaw +-30, pitch
+-20 from the photo: ``core.eval.edits``) most of the side the photo never showed has to be made up, and
both warping engines show it as smooth patches and tears. ``large_edit_warning`` says so in words: the
studio's status line shows it, and ``edit`` and ``edit-video`` log it (a video's per-frame targets are
measured against each frame's own fitted pose).
"""

from __future__ import annotations

import math

import torch

from core.face.base import FaceModel
from core.face.params import FaceParams

__all__ = [
    "TESTED_PITCH_DEG",
    "TESTED_YAW_DEG",
    "facing_angles",
    "head_changes",
    "large_edit_warning",
]

# the edit protocol's largest requests (``core.eval.edits.EDIT_GRID``, a test keeps them equal): the range
# whose quality is measured
TESTED_YAW_DEG = 30.0
TESTED_PITCH_DEG = 20.0
# the facing direction and the controls' Euler angles differ by a fraction of a degree for a head that is also
# tilted: a request at the tested limit is not beyond it
SLACK_DEG = 1.0


def facing_angles(model: FaceModel, params: FaceParams) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B,)`` yaw and ``(B,)`` pitch (degrees) of the direction the posed face points in (the rest
    frame's +z carried by ``model.head_rotation``): 0, 0 facing the camera."""
    forward = model.head_rotation(params)[..., 2]  # (B, 3)
    yaw = torch.rad2deg(torch.atan2(forward[:, 0], forward[:, 2]))
    pitch = torch.rad2deg(torch.asin(forward[:, 1].clamp(-1.0, 1.0)))
    return yaw, pitch


def head_changes(model: FaceModel, source: FaceParams, target: FaceParams) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B,)`` yaw and ``(B,)`` pitch changes (degrees, target minus source, signs as the ``yaw`` and ``pitch``
    controls) of the facing direction from ``source`` (B rows, or 1 for all) to ``target`` (B rows). Head and
    neck rotations count together; roll turns the face within the image and hides nothing, so it is left out.
    A turn across the back reads as the short way round."""
    with torch.no_grad():
        y0, p0 = facing_angles(model, source)
        y1, p1 = facing_angles(model, target)
    return torch.remainder(y1 - y0 + 180.0, 360.0) - 180.0, p1 - p0


def large_edit_warning(model: FaceModel, source: FaceParams, target: FaceParams) -> str | None:
    """A sentence when the edit turns the face further from the source's pose than the engines are measured
    on (``TESTED_YAW_DEG``, ``TESTED_PITCH_DEG``), else None. ``source`` and ``target`` are a photo's (one
    row) or a video's (one row per frame: the sentence gives the largest change and how many frames go
    beyond)."""
    yaw, pitch = head_changes(model, source, target)
    wide = yaw.abs() > TESTED_YAW_DEG + SLACK_DEG
    steep = pitch.abs() > TESTED_PITCH_DEG + SLACK_DEG
    beyond = wide | steep
    if not bool(beyond.any()):
        return None
    several = len(yaw) > 1
    by = "by up to" if several else "by"
    parts = []
    if wide.any():
        parts.append(f"turned sideways {by} {_deg(float(yaw.abs().max()))}")
    if steep.any():
        parts.append(f"tilted up or down {by} {_deg(float(pitch.abs().max()))}")
    where = "from the photo's pose"
    if several:
        where = f"from each frame's own pose in {int(beyond.sum())} of {len(yaw)} frames"
    return (
        f"The face is {' and '.join(parts)} {where}, beyond the ±{TESTED_YAW_DEG:.0f}° turns and "
        f"±{TESTED_PITCH_DEG:.0f}° tilts the engines are measured on: most of what the photo never showed is "
        "made up, so expect smooth patches and tears there."
    )


def _deg(value: float) -> str:
    return f"{int(math.floor(abs(value) + 0.5))}°"
