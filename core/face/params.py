"""``FaceParams``: the one batched parameter set shared by every face model, fitter, engine and UI."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields

import numpy as np
import torch

FIELD_NAMES = ("shape", "expression", "head", "neck", "jaw", "gaze", "camera")


@dataclass
class FaceParams:
    """Parameters of a batch of B faces. All angles in degrees (see ``core.face.rotation``).

    - ``shape``: ``(B, S)`` identity coefficients (ICT: PCA weights, ~N(0, 1); FLAME: betas).
    - ``expression``: ``(B, E)`` expression weights (ICT: the 53 ARKit-style blendshapes in [0, 1];
      FLAME: the linear expression coefficients). Names: ``model.expression_names``.
    - ``head``: ``(B, 3)`` yaw, pitch, roll of the head.
    - ``neck``: ``(B, 3)`` yaw, pitch, roll of the neck.
    - ``jaw``: ``(B, 2)`` open, sideways (units per model: ICT blendshape weight, FLAME degrees;
      sideways > 0 moves the chin to the subject's left).
    - ``gaze``: ``(B, 2, 2)`` per eye (subject's left, right) the (yaw, pitch) of the eyeball.
    - ``camera``: ``(B, 3)`` weak-perspective (s, tx, ty), see ``core.coords``.
    """

    shape: torch.Tensor
    expression: torch.Tensor
    head: torch.Tensor
    neck: torch.Tensor
    jaw: torch.Tensor
    gaze: torch.Tensor
    camera: torch.Tensor

    def __post_init__(self) -> None:
        b = self.shape.shape[0]
        expected = {
            "shape": 2,
            "expression": 2,
            "head": (3,),
            "neck": (3,),
            "jaw": (2,),
            "gaze": (2, 2),
            "camera": (3,),
        }
        for name, spec in expected.items():
            t = getattr(self, name)
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"FaceParams.{name} must be a torch.Tensor, got {type(t).__name__}")
            if t.shape[0] != b:
                raise ValueError(f"FaceParams.{name} has batch {t.shape[0]}, expected {b} (from shape)")
            if isinstance(spec, int):
                if t.dim() != spec:
                    raise ValueError(f"FaceParams.{name} must be (B, K), got {tuple(t.shape)}")
            elif tuple(t.shape[1:]) != spec:
                raise ValueError(f"FaceParams.{name} must be (B, {', '.join(map(str, spec))}), got {tuple(t.shape)}")

    # ------------------------------------------------------------------ construction
    @classmethod
    def zeros(
        cls,
        batch: int,
        n_shape: int,
        n_expression: int,
        camera: tuple[float, float, float],
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> FaceParams:
        """A neutral batch: every coefficient and angle zero, the given camera."""

        def z(*s: int) -> torch.Tensor:
            return torch.zeros(batch, *s, device=device, dtype=dtype)

        cam = torch.tensor(camera, device=device, dtype=dtype).expand(batch, 3).clone()
        return cls(z(n_shape), z(n_expression), z(3), z(3), z(2), z(2, 2), cam)

    @classmethod
    def cat(cls, items: list[FaceParams]) -> FaceParams:
        """Concatenate along the batch dimension."""
        return cls(**{n: torch.cat([getattr(p, n) for p in items], 0) for n in FIELD_NAMES})

    @classmethod
    def from_dict(
        cls, data: Mapping[str, np.ndarray | torch.Tensor], device: torch.device | str | None = None
    ) -> FaceParams:
        """Inverse of ``to_numpy``; accepts arrays or tensors (e.g. an ``np.load`` of an npz)."""
        missing = [n for n in FIELD_NAMES if n not in data]
        if missing:
            raise KeyError(f"FaceParams data lacks {missing}")
        return cls(**{n: torch.as_tensor(np.asarray(data[n]), dtype=torch.float32, device=device) for n in FIELD_NAMES})

    # ------------------------------------------------------------------ utilities
    @property
    def batch_size(self) -> int:
        return self.shape.shape[0]

    @property
    def device(self) -> torch.device:
        return self.shape.device

    @property
    def dtype(self) -> torch.dtype:
        return self.shape.dtype

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> FaceParams:
        """Apply ``fn`` to every field."""
        return FaceParams(**{n: fn(getattr(self, n)) for n in FIELD_NAMES})

    def clone(self) -> FaceParams:
        return self.map(torch.clone)

    def detach(self) -> FaceParams:
        return self.map(torch.Tensor.detach)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> FaceParams:
        return self.map(lambda t: t.to(device=device, dtype=dtype))

    def __getitem__(self, index: int | slice | torch.Tensor) -> FaceParams:
        """Select batch items; an int keeps the batch dimension (``p[0]`` has B = 1)."""
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return self.map(lambda t: t[index])

    def expand(self, batch: int) -> FaceParams:
        """Repeat a B = 1 set ``batch`` times."""
        if self.batch_size != 1:
            raise ValueError(f"expand needs a batch of 1, got {self.batch_size}")
        return self.map(lambda t: t.expand(batch, *t.shape[1:]).clone())

    def to_numpy(self) -> dict[str, np.ndarray]:
        """Field name to float32 array; ready for ``np.savez``."""
        return {n: getattr(self, n).detach().cpu().float().numpy() for n in FIELD_NAMES}

    def __repr__(self) -> str:
        dims = ", ".join(f"{f.name}={tuple(getattr(self, f.name).shape)}" for f in fields(self))
        return f"FaceParams({dims})"
