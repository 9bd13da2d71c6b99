"""Motion transfer between fitted faces: what "relative" and "absolute" motion copy, defined once.

Motion is the expression, head and neck pose, jaw and gaze (``MOTION_FIELDS``). Identity (shape) and framing
(the weak-perspective camera: scale and position in the crop) stay the source's, so the driven face keeps
its place and size in the source photo.
"""

from __future__ import annotations

from core.face.params import FaceParams

MOTION_FIELDS = ("expression", "head", "neck", "jaw", "gaze")
MODES = ("relative", "absolute")


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"motion mode must be 'relative' or 'absolute', got '{mode}'")


def absolute_motion(source: FaceParams, driving: FaceParams) -> FaceParams:
    """``(B,)`` targets: the source (B = 1, or B) with each driving frame's motion fields."""
    target = source.expand(driving.batch_size) if source.batch_size == 1 else source.clone()
    for name in MOTION_FIELDS:
        setattr(target, name, getattr(driving, name).clone())
    return target


def relative_motion(source: FaceParams, driving: FaceParams, reference: FaceParams | None = None) -> FaceParams:
    """``(B,)`` targets: the source plus each driving frame's change from ``reference`` (default the first
    driving frame) in the motion fields."""
    reference = driving[:1] if reference is None else reference
    target = source.expand(driving.batch_size) if source.batch_size == 1 else source.clone()
    for name in MOTION_FIELDS:
        delta = getattr(driving, name) - getattr(reference, name)
        setattr(target, name, getattr(target, name) + delta)
    return target


def transfer(source: FaceParams, driving: FaceParams, mode: str = "relative") -> FaceParams:
    """``relative_motion`` or ``absolute_motion`` by name."""
    check_mode(mode)
    return absolute_motion(source, driving) if mode == "absolute" else relative_motion(source, driving)
