"""Rotations from the angles the user sees (degrees), in the model frame of ``core.coords``.

Conventions (model frame: x = subject's left, y up, z towards the camera):
- ``yaw`` > 0 turns the face towards the subject's left, which is the image's right;
- ``pitch`` > 0 lifts the chin (the face looks up);
- ``roll`` > 0 tilts the top of the head towards the subject's right shoulder (the image's left).
The matrix is ``R = Ry(yaw) @ Rx(-pitch) @ Rz(roll)`` and rotates column vectors: ``v' = R v``.
"""

from __future__ import annotations

import math

import torch


def _axis_rotation(angle_rad: torch.Tensor, axis: int) -> torch.Tensor:
    """Right-handed rotation about one coordinate axis, ``(...,) -> (..., 3, 3)``."""
    c, s = torch.cos(angle_rad), torch.sin(angle_rad)
    one, zero = torch.ones_like(c), torch.zeros_like(c)
    if axis == 0:
        rows = [one, zero, zero, zero, c, -s, zero, s, c]
    elif axis == 1:
        rows = [c, zero, s, zero, one, zero, -s, zero, c]
    else:
        rows = [c, -s, zero, s, c, zero, zero, zero, one]
    return torch.stack(rows, dim=-1).reshape(*angle_rad.shape, 3, 3)


def euler_to_matrix(angles_deg: torch.Tensor) -> torch.Tensor:
    """``(..., 3)`` = (yaw, pitch, roll) in degrees to rotation matrices ``(..., 3, 3)``."""
    rad = torch.deg2rad(angles_deg)
    return _axis_rotation(rad[..., 0], 1) @ _axis_rotation(-rad[..., 1], 0) @ _axis_rotation(rad[..., 2], 2)


def matrix_to_euler(rot: torch.Tensor) -> torch.Tensor:
    """Inverse of ``euler_to_matrix``: ``(..., 3, 3) -> (..., 3)`` (yaw, pitch, roll) in degrees.

    Valid for |pitch| < 90 degrees, which covers every face a portrait tool sees.
    """
    # R = Ry(a) Rx(b) Rz(c) with b = -pitch: R[1,2] = -sin b, R[0,2] = cos b sin a, R[2,2] = cos b cos a,
    # R[1,0] = cos b sin c, R[1,1] = cos b cos c.
    b = torch.asin((-rot[..., 1, 2]).clamp(-1.0, 1.0))
    a = torch.atan2(rot[..., 0, 2], rot[..., 2, 2])
    c = torch.atan2(rot[..., 1, 0], rot[..., 1, 1])
    return torch.rad2deg(torch.stack([a, -b, c], dim=-1))


def rotation_angle_deg(rot: torch.Tensor) -> torch.Tensor:
    """Geodesic angle of rotation matrices ``(..., 3, 3) -> (...,)`` in degrees."""
    cos = ((rot.diagonal(dim1=-2, dim2=-1).sum(-1) - 1.0) / 2.0).clamp(-1.0, 1.0)
    return torch.acos(cos) * (180.0 / math.pi)


def rotation_axis(rot: torch.Tensor) -> torch.Tensor:
    """Unit axis of rotation matrices ``(..., 3, 3) -> (..., 3)`` (zero for the identity); valid below 180
    degrees."""
    vee = torch.stack(
        [rot[..., 2, 1] - rot[..., 1, 2], rot[..., 0, 2] - rot[..., 2, 0], rot[..., 1, 0] - rot[..., 0, 1]], -1
    )
    return torch.nn.functional.normalize(vee, dim=-1)
