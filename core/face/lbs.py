"""Linear blend skinning with pose-corrective blendshapes (SMPL/FLAME style), batched in torch."""

from __future__ import annotations

import torch


def pose_features(rotations: torch.Tensor) -> torch.Tensor:
    """``(B, J, 3, 3)`` joint rotations to the pose-corrective input ``(B, (J-1)*9)``: ``R - I`` of the
    non-root joints, each flattened row by row."""
    eye = torch.eye(3, dtype=rotations.dtype, device=rotations.device)
    return (rotations[:, 1:] - eye).flatten(1)


def rigid_transforms(rotations: torch.Tensor, joints: torch.Tensor, parents: list[int]) -> torch.Tensor:
    """Skinning matrices ``(B, J, 4, 4)`` mapping rest-pose points to posed points, per joint.

    ``rotations (B, J, 3, 3)`` are local (relative to the parent), ``joints (B, J, 3)`` the rest-pose joint
    positions and ``parents[j]`` the parent of joint j (-1 for the root, which must come first).
    """
    b, j = joints.shape[:2]
    local = torch.zeros(b, j, 4, 4, dtype=joints.dtype, device=joints.device)
    local[:, :, :3, :3] = rotations
    rel = joints.clone()
    for k in range(1, j):
        rel[:, k] = joints[:, k] - joints[:, parents[k]]
    local[:, :, :3, 3] = rel
    local[:, :, 3, 3] = 1.0
    world = [local[:, 0]]
    for k in range(1, j):
        world.append(world[parents[k]] @ local[:, k])
    world_t = torch.stack(world, dim=1)
    # remove the rest-pose joint position so the transforms act on rest-pose vertices
    offset = (world_t[:, :, :3, :3] @ joints[..., None])[..., 0]
    out = world_t.clone()
    out[:, :, :3, 3] = world_t[:, :, :3, 3] - offset
    return out


def skin(vertices: torch.Tensor, transforms: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Blend per-joint transforms ``(B, J, 4, 4)`` with weights ``(N, J)`` and apply to ``(B, N, 3)``."""
    blended = torch.einsum("nj,bjkl->bnkl", weights.to(vertices.dtype), transforms)
    return (blended[..., :3, :3] @ vertices[..., None])[..., 0] + blended[..., :3, 3]
