"""Eyes on the camera: the per-eye gaze that cancels the head's (and neck's) rotation.

The gaze angles rotate each eyeball in the head's frame (``core.face.rotation`` convention, degrees); the
eye then looks along ``R_head R_neck R_gaze z``. Looking into the camera means that direction is the
camera axis ``z``, so ``R_gaze z = (R_head R_neck)^T z``.
"""

from __future__ import annotations

import torch

from core.face.base import FaceModel
from core.face.params import FaceParams
from core.face.rotation import euler_to_matrix

EYES = ("left", "right")


def camera_gaze_batch(model: FaceModel, params: FaceParams) -> dict[str, torch.Tensor]:
    """Per-eye gaze controls ``{name: (B,)}`` that put both eyes on the camera for every face of ``params``,
    clamped to the controls' ranges (a head turned further than the eyes can turn keeps them at the limit)."""
    controls = model.controls()
    rot = euler_to_matrix(params.head.double()) @ euler_to_matrix(params.neck.double())  # (B, 3, 3)
    d = rot[:, 2, :]  # R^T z: the camera axis in the eye's frame
    yaw = torch.rad2deg(torch.atan2(d[:, 0], d[:, 2]))
    pitch = torch.rad2deg(torch.asin(d[:, 1].clamp(-1, 1)))
    out = {}
    for eye in EYES:
        for name, value in ((f"gaze_{eye}_yaw", yaw), (f"gaze_{eye}_pitch", pitch)):
            if name in controls:
                c = controls[name]
                out[name] = value.clamp(c.minimum, c.maximum).to(params.gaze.dtype)
    return out


def camera_gaze(model: FaceModel, params: FaceParams) -> dict[str, float]:
    """``camera_gaze_batch`` for the first face of ``params``, as plain control values."""
    return {k: float(v[0]) for k, v in camera_gaze_batch(model, params[:1]).items()}
