"""What every face model offers: parameters to vertices, topology, regions, landmarks and named controls."""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from core.coords import project_weak_perspective
from core.face.params import FaceParams
from core.face.rotation import euler_to_matrix

# A portrait crop: the face (about 20 cm from chin to hairline) spans ~60 % of the image.
DEFAULT_CAMERA = (0.06, 0.0, 0.12)


class EditError(ValueError):
    """A control value a user gave is unknown, not a finite number, or out of its range."""


@dataclass(frozen=True)
class Control:
    """A named scalar the user can set (a slider, a ``--set name=value``).

    ``targets`` are (field, index) pairs into ``FaceParams``; setting the control writes the same value
    to each of them (e.g. ``gaze_yaw`` moves both eyes, ``blink`` closes both lids).
    """

    name: str
    group: str
    minimum: float
    maximum: float
    targets: tuple[tuple[str, tuple[int, ...]], ...]
    default: float = 0.0
    label: str = ""

    def read(self, params: FaceParams) -> torch.Tensor:
        """Current value ``(B,)`` (of the first target)."""
        field, index = self.targets[0]
        return getattr(params, field)[(slice(None), *index)]


@dataclass(frozen=True)
class LandmarkEmbedding:
    """Surface points given as a triangle and barycentric coordinates: ``face_ids (L,)``, ``bary (L, 3)``."""

    face_ids: torch.Tensor
    bary: torch.Tensor

    def positions(self, vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        """``(B, N, 3) -> (B, L, 3)``."""
        face_ids = self.face_ids.to(vertices.device)
        tri = vertices[:, faces.to(vertices.device)[face_ids]]  # (B, L, 3, 3)
        bary = self.bary.to(device=vertices.device, dtype=vertices.dtype)
        return (tri * bary[None, :, :, None]).sum(2)


def _same_key(a: Sequence[torch.Tensor | None], b: Sequence[torch.Tensor | None]) -> bool:
    """Whether two keys hold equal values: both None, or tensors of one shape, dtype and device that are equal."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x is None or y is None:
            if x is not y:
                return False
        elif x.shape != y.shape or x.dtype != y.dtype or x.device != y.device or not torch.equal(x, y):
            return False
    return True


class TensorCache:
    """The last few results of a computation keyed on the *values* of tensors (never on their identity: a
    caller may refill the same tensor in place), for per-call work that rarely changes (the identity blend
    of a shape that stays the same over a clip or a webcam session).

    ``guard`` is an extra part of the key compared by identity: the model's basis tensor, so that moving the
    model (``.to(device)``, which replaces its buffers) empties the cache. Keys are stored as detached
    clones; values (tensors or tuples of them) must not require grad. Safe across threads: the entries are
    an immutable tuple that is replaced, never modified (two threads may both compute a missing value).
    """

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._entries: tuple[tuple[object, tuple[torch.Tensor | None, ...], Any], ...] = ()

    def get(self, guard: object, key: Sequence[torch.Tensor | None], compute: Callable[[], Any]) -> Any:
        """The cached value for ``key`` (tensors or None), else ``compute()`` (stored; the least recently used
        entry dropped)."""
        entries = self._entries
        for i, (g, k, value) in enumerate(entries):
            if g is guard and _same_key(k, key):
                if i:  # most recently used first
                    self._entries = (entries[i], *entries[:i], *entries[i + 1 :])
                return value
        value = compute()
        stored = tuple(None if t is None else t.detach().clone() for t in key)
        self._entries = ((guard, stored, value), *entries[: self.size - 1])
        return value

    def clear(self) -> None:
        """Forget every entry (after changing the tensors a cached computation read in place)."""
        self._entries = ()

    def __len__(self) -> int:
        return len(self._entries)


class FaceModel(nn.Module):
    """Base class. Subclasses fill the buffers and implement ``forward``.

    ``forward(params) -> (B, N, 3)`` vertices in the model frame of ``core.coords`` (cm; x = subject's
    left, y up, z towards the camera). ``project`` maps them to normalised image coordinates and depth.
    """

    kind: str = "base"
    faces: torch.Tensor  # (F, 3) long, every triangle
    render_faces: torch.Tensor  # (F', 3) long, the default rendering subset
    expression_names: list[str]
    default_camera: tuple[float, float, float] = DEFAULT_CAMERA

    def __init__(self) -> None:
        super().__init__()
        self.regions: dict[str, torch.Tensor] = {}
        self.landmark_embedding: LandmarkEmbedding | None = None
        self._controls: dict[str, Control] = {}

    # ------------------------------------------------------------------ sizes
    @property
    def n_vertices(self) -> int:
        raise NotImplementedError

    @property
    def n_shape(self) -> int:
        raise NotImplementedError

    @property
    def n_expression(self) -> int:
        return len(self.expression_names)

    # ------------------------------------------------------------------ parameters
    def neutral(self, batch: int = 1, device: torch.device | str | None = None) -> FaceParams:
        """All-zero parameters with the default portrait camera; gives exactly the template mesh."""
        device = device if device is not None else self.faces.device
        return FaceParams.zeros(batch, self.n_shape, self.n_expression, self.default_camera, device=device)

    def controls(self) -> dict[str, Control]:
        """Named controls with their default slider ranges, in display order."""
        return dict(self._controls)

    def _add_control(self, control: Control) -> None:
        self._controls[control.name] = control

    def _add_pose_controls(self) -> None:
        """Head and neck rotations in degrees (``yaw``, ``pitch``, ``roll``, ``neck_*``): every model's."""
        for i, (name, lo, hi) in enumerate((("yaw", -45, 45), ("pitch", -30, 30), ("roll", -30, 30))):
            self._add_control(Control(name, "head", lo, hi, (("head", (i,)),), label=f"head {name}"))
        for i, name in enumerate(("yaw", "pitch", "roll")):
            self._add_control(Control(f"neck_{name}", "neck", -20, 20, (("neck", (i,)),), label=f"neck {name}"))

    def _add_gaze_controls(self) -> None:
        """Gaze in degrees for both eyes (``gaze_yaw``, ``gaze_pitch``) and for each (``gaze_left_yaw``, ...)."""
        add = self._add_control
        add(Control("gaze_yaw", "gaze", -30, 30, (("gaze", (0, 0)), ("gaze", (1, 0))), label="gaze yaw"))
        add(Control("gaze_pitch", "gaze", -25, 25, (("gaze", (0, 1)), ("gaze", (1, 1))), label="gaze pitch"))
        for e, side in enumerate(("left", "right")):
            add(Control(f"gaze_{side}_yaw", "gaze", -30, 30, (("gaze", (e, 0)),), label=f"{side} eye yaw"))
            add(Control(f"gaze_{side}_pitch", "gaze", -25, 25, (("gaze", (e, 1)),), label=f"{side} eye pitch"))

    def _add_shape_controls(self) -> None:
        """Identity components ``shape000``... in standard deviations."""
        for i in range(self.n_shape):
            self._add_control(Control(f"shape{i:03d}", "shape", -3, 3, (("shape", (i,)),), label=f"shape {i}"))

    def check_edits(self, edits: Mapping[str, object], offset: bool = False) -> dict[str, float]:
        """Validated user control values: the one check for the CLI, the API, presets and the studio.

        Refuses (``EditError``) unknown names (naming the closest), values that are not numbers, NaN and
        infinities, and values outside the control's range; with ``offset`` a value is a change, allowed
        up to the width of the range in either direction. Returns plain ``{name: float}``.
        """
        checked: dict[str, float] = {}
        for name, raw in edits.items():
            control = self._controls.get(name)
            if control is None:
                close = difflib.get_close_matches(str(name), list(self._controls), n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise EditError(
                    f"unknown control '{name}' for the {self.kind} model{hint} "
                    "(`python -m core mesh --list` lists them)"
                )
            if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                try:
                    value = float(raw)  # numpy scalars, numeric strings
                except (TypeError, ValueError):
                    raise EditError(f"control '{name}' needs a number, got {raw!r}") from None
            else:
                value = float(raw)
            if not math.isfinite(value):
                raise EditError(f"control '{name}' needs a finite number, got {value}")
            lo, hi = control.minimum, control.maximum
            if offset:
                lo, hi = -(hi - lo), hi - lo
            if not lo <= value <= hi:
                kind = "an offset" if offset else "a value"
                raise EditError(f"control '{name}' takes {kind} in [{lo:g}, {hi:g}], got {value:g}")
            checked[name] = value
        return checked

    def apply_edits(self, params: FaceParams, edits: Mapping[str, float]) -> FaceParams:
        """A copy of ``params`` with the named controls set to absolute values (whole batch).

        Raises ``KeyError`` naming the closest known controls for an unknown name.
        """
        out = params.clone()
        for name, value in edits.items():
            control = self._controls.get(name)
            if control is None:
                close = difflib.get_close_matches(name, list(self._controls), n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise KeyError(f"unknown control '{name}' for the {self.kind} model{hint}")
            for field, index in control.targets:
                getattr(out, field)[(slice(None), *index)] = float(value)
        return out

    # ------------------------------------------------------------------ geometry helpers
    def project(self, vertices: torch.Tensor, camera: torch.Tensor) -> torch.Tensor:
        """Model-frame ``(B, N, 3)`` cm to ``(B, N, 3)`` normalised image x, y and depth."""
        return project_weak_perspective(vertices, camera)

    def head_rotation(self, params: FaceParams) -> torch.Tensor:
        """``(B, 3, 3)``: the rotation posing gives the rigid head (the vertices of head weight 1), rest
        frame to model frame: the head's rotation, then the neck's."""
        return euler_to_matrix(params.neck) @ euler_to_matrix(params.head)

    def landmarks(self, vertices: torch.Tensor) -> torch.Tensor:
        """The model's landmark points ``(B, L, 3)`` from vertices ``(B, N, 3)``."""
        if self.landmark_embedding is None:
            raise RuntimeError(f"the {self.kind} model has no landmark embedding loaded")
        return self.landmark_embedding.positions(vertices, self.faces)

    def region_faces(self, region: str) -> torch.Tensor:
        """Triangles of ``render_faces`` whose three vertices all lie in ``region``: ``(F_r, 3)``."""
        mask = self.regions[region]
        return self.render_faces[mask[self.render_faces].all(dim=1)]


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals ``(N, 3)`` of ``verts (N, 3)`` (counter-clockwise ``faces (F, 3)``
    point outwards)."""
    tri = verts[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals = np.zeros_like(verts)
    for k in range(3):
        np.add.at(normals, faces[:, k], fn)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def vertex_landmarks(vertex_ids: torch.Tensor, faces: torch.Tensor) -> LandmarkEmbedding:
    """Express landmarks that sit exactly on vertices as a ``LandmarkEmbedding`` (one-hot barycentrics)."""
    face_ids, bary = [], []
    for v in vertex_ids.tolist():
        hit = (faces == v).nonzero()
        if len(hit) == 0:
            raise ValueError(f"landmark vertex {v} belongs to no triangle")
        f, corner = hit[0].tolist()
        face_ids.append(f)
        b = [0.0, 0.0, 0.0]
        b[corner] = 1.0
        bary.append(b)
    return LandmarkEmbedding(torch.tensor(face_ids, dtype=torch.long), torch.tensor(bary))
