"""FLAME 2020 as a ``FaceModel``, loaded from the licensed ``generic_model.pkl`` without chumpy.

The file is read by ``core.face.safe_unpickle`` (no code from the file ever runs). Standard FLAME:
``v = template + shapedirs[:, :, :S] beta + shapedirs[:, :, 300:300+E] psi``, joints from the joint
regressor, pose correctives from ``R - I`` of the four non-root joints, then linear blend skinning over
the five joints (global, neck, jaw, left eye, right eye). Metres are converted to centimetres.

Mapping from ``FaceParams`` (degrees, conventions of ``core.face.rotation``):
- ``head`` -> the global (root) joint; ``neck`` -> the neck joint;
- ``jaw`` (open, sideways) -> the jaw joint rotated by ``open`` about x (chin down) and ``sideways`` about
  y (chin to the subject's left);
- ``gaze`` -> the eye joints (yaw, pitch, no roll). Which of joints 3 and 4 is the subject's left eye is
  read from the rest-pose joint positions (+x is the subject's left).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from core.face.base import Control, FaceModel
from core.face.lbs import pose_features, rigid_transforms, skin
from core.face.params import FaceParams
from core.face.rotation import _axis_rotation, euler_to_matrix
from core.face.safe_unpickle import safe_load, to_numpy

N_SHAPE_FLAME = 300  # shapedirs columns before the expression columns in FLAME 2020
METRES_TO_CM = 100.0


class FLAMEFaceModel(FaceModel):
    """FLAME from ``generic_model.pkl``.

    Args:
        path: the FLAME 2020 pickle.
        n_shape: identity coefficients used (<= 300; default 100 as in DECA, or what the file has).
        n_expression: expression coefficients used (<= 100; default 50 as in DECA, or what the file has).
    """

    kind = "flame"

    def __init__(self, path: str | Path, n_shape: int | None = None, n_expression: int | None = None) -> None:
        super().__init__()
        self.source_path = Path(path)
        data = safe_load(path)
        if not isinstance(data, dict):
            raise ValueError(f"{path} is not a FLAME model file (expected a dict, got {type(data).__name__})")
        missing = {"v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f"} - set(data)
        if missing:
            raise ValueError(f"{path} is not a FLAME model file: missing {sorted(missing)}")
        arr = {
            k: to_numpy(data[k])
            for k in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
        }
        n_dirs = arr["shapedirs"].shape[2]
        n_shape_file = min(N_SHAPE_FLAME, n_dirs)
        n_shape = min(100, n_shape_file) if n_shape is None else n_shape
        n_expression = min(50, n_dirs - n_shape_file) if n_expression is None else n_expression
        if not 1 <= n_shape <= n_shape_file:
            raise ValueError(f"n_shape must be in 1..{n_shape_file}")
        if not 0 <= n_expression <= n_dirs - n_shape_file:
            raise ValueError(f"n_expression must be in 0..{n_dirs - n_shape_file}")
        n_joints = arr["J_regressor"].shape[0]
        if n_joints != 5:
            raise ValueError(f"expected FLAME's 5 joints, the file has {n_joints}")

        cm = METRES_TO_CM
        v = arr["v_template"].astype(np.float32) * cm
        sd = arr["shapedirs"].astype(np.float32) * cm
        self.register_buffer("v_template", torch.from_numpy(v))
        self.register_buffer(
            "shapedirs", torch.from_numpy(np.ascontiguousarray(sd[:, :, :n_shape].reshape(-1, n_shape).T))
        )
        self.register_buffer(
            "exprdirs",
            torch.from_numpy(
                np.ascontiguousarray(sd[:, :, n_shape_file : n_shape_file + n_expression].reshape(-1, n_expression).T)
            ),
        )
        pd = arr["posedirs"].astype(np.float32) * cm  # (N, 3, 36)
        self.register_buffer("posedirs", torch.from_numpy(np.ascontiguousarray(pd.reshape(-1, pd.shape[-1]).T)))
        self.register_buffer("J_regressor", torch.from_numpy(arr["J_regressor"].astype(np.float32)))
        self.register_buffer("lbs_weights", torch.from_numpy(arr["weights"].astype(np.float32)))
        self.register_buffer("faces", torch.from_numpy(arr["f"].astype(np.int64)))
        self.register_buffer("render_faces", self.faces.clone())
        parents = arr["kintree_table"][0].astype(np.int64)
        parents[0] = -1
        self.parents = parents.tolist()
        self.expression_names = [f"exp{i:03d}" for i in range(n_expression)]

        rest_joints = self.J_regressor @ self.v_template
        self.eye_joints = (3, 4) if rest_joints[3, 0] >= rest_joints[4, 0] else (4, 3)  # (left, right)
        dominant = self.lbs_weights.argmax(1)
        self.regions = {
            "eyes": (dominant == 3) | (dominant == 4),
            "jaw": dominant == 2,
            "face": dominant != 3,
        }
        self.regions["face"] &= dominant != 4
        self._setup_controls()

    def _setup_controls(self) -> None:
        add = self._add_control
        self._add_pose_controls()
        add(Control("jaw_open", "jaw", 0, 30, (("jaw", (0,)),), label="jaw open (deg)"))
        add(Control("jaw_sideways", "jaw", -10, 10, (("jaw", (1,)),), label="jaw sideways (deg)"))
        self._add_gaze_controls()
        for i, name in enumerate(self.expression_names):
            add(Control(name, "expression", -3, 3, (("expression", (i,)),), label=f"expression {i}"))
        self._add_shape_controls()

    @property
    def n_vertices(self) -> int:
        return self.v_template.shape[0]

    @property
    def n_shape(self) -> int:
        return self.shapedirs.shape[0]

    def joint_rotations(self, params: FaceParams) -> torch.Tensor:
        """Local rotations of the five joints ``(B, 5, 3, 3)`` in the file's joint order."""
        b = params.batch_size
        rots = torch.eye(3, dtype=params.dtype, device=params.device).repeat(b, 5, 1, 1)
        rots[:, 0] = euler_to_matrix(params.head)
        rots[:, 1] = euler_to_matrix(params.neck)
        jaw = torch.deg2rad(params.jaw)
        rots[:, 2] = _axis_rotation(jaw[:, 1], 1) @ _axis_rotation(jaw[:, 0], 0)
        zero = torch.zeros_like(params.gaze[..., :1])
        eyes = euler_to_matrix(torch.cat([params.gaze, zero], -1))
        rots[:, self.eye_joints[0]] = eyes[:, 0]
        rots[:, self.eye_joints[1]] = eyes[:, 1]
        return rots

    def head_rotation(self, params: FaceParams) -> torch.Tensor:
        """``(B, 3, 3)``: the head's global rotation: the root joint's (``head``), then the neck joint's."""
        return euler_to_matrix(params.head) @ euler_to_matrix(params.neck)

    def forward(self, params: FaceParams) -> torch.Tensor:
        """Vertices ``(B, N, 3)`` in the model frame (cm)."""
        if params.shape.shape[1] > self.n_shape or params.expression.shape[1] != self.n_expression:
            raise ValueError(
                f"FLAME model uses {self.n_shape} shape and {self.n_expression} expression "
                f"coefficients; got {params.shape.shape[1]} and {params.expression.shape[1]}"
            )
        b, s = params.batch_size, params.shape.shape[1]
        offsets = params.shape @ self.shapedirs[:s] + params.expression @ self.exprdirs
        shaped = self.v_template + offsets.view(b, -1, 3)
        joints = self.J_regressor @ shaped  # (B, 5, 3)
        rots = self.joint_rotations(params)
        posed = shaped + (pose_features(rots) @ self.posedirs).view(b, -1, 3)
        return skin(posed, rigid_transforms(rots, joints, self.parents), self.lbs_weights)
