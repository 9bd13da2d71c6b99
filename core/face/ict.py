"""ICT Face Model Light (MIT, USC ICT) as a ``FaceModel``: the default, openly licensed backend.

Geometry, in the order it is applied:
1. ``template + shape @ identity_basis + expression @ expression_basis`` (linear blendshapes, cm).
   The jaw is driven through the jaw blendshapes, not a jaw rotation: ``jaw[:, 0]`` adds to ``jawOpen``,
   ``jaw[:, 1] > 0`` to ``jawLeft`` and ``< 0`` to ``jawRight`` (sideways > 0 moves the chin to the
   subject's left).
2. Gaze: each eyeball (sclera and iris) turns rigidly about its centre, found by a least-squares sphere
   fit to the back of that eye's sclera (so it follows the identity).
3. Head, then neck: rotations about fixed pivots with per-vertex weights. The weight is 1 on everything
   above the chin line (face, skull, eyes, mouth move rigidly), 0 on the open rim at the base of the
   neck (which therefore never moves), and harmonic on the mesh in between, the smoothest fade the neck
   allows, so that turning the head bends the neck instead of tearing it. A partial weight ``w`` applies
   the rotation with every Euler angle scaled by ``w``. The head turns about the top of the spine; the
   neck control uses the same weights about a pivot low in the neck (a lean of head and neck).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from core.face.base import Control, FaceModel, TensorCache, vertex_landmarks
from core.face.params import FaceParams
from core.face.rotation import euler_to_matrix

log = logging.getLogger(__name__)

# Inclusive vertex index ranges from the FaceKit's documentation (see the asset README).
REGION_RANGES: dict[str, tuple[int, int]] = {
    "face": (0, 9408),
    "face_narrow": (0, 6705),
    "head_neck": (9409, 11247),
    "mouth_socket": (11248, 13293),
    "eye_socket_left": (13294, 13677),
    "eye_socket_right": (13678, 14061),
    "gums_tongue": (14062, 17038),
    "teeth": (17039, 21450),
    "eyeball_left": (21451, 23020),
    "sclera_left": (21451, 22220),
    "iris_left": (22221, 23020),
    "eyeball_right": (23021, 24590),
    "sclera_right": (23021, 23790),
    "iris_right": (23791, 24590),
    "lacrimal": (24591, 24998),
    "eye_blend": (24999, 25046),
    "eye_occlusion": (25047, 25350),
    "eyelashes": (25351, 26718),
}
# Region unions the renderer and engines ask for.
REGION_UNIONS: dict[str, tuple[str, ...]] = {
    "eyes": ("eyeball_left", "eyeball_right"),
    "mouth_interior": ("mouth_socket", "gums_tongue", "teeth"),
}
# Materials left out of the default rendering subset: thin or translucent shells (lashes, tear film,
# eye shadow meshes) and the inner mouth parts that a warp cannot show.
DEFAULT_RENDER_EXCLUDE = ("M_GumsTongue", "M_Teeth", "M_LacrimalFluid", "M_EyeBlend", "M_EyeOcclusion", "M_EyeLashes")

HEAD_PIVOT = (0.0, -4.0, -1.5)  # top of the cervical spine, behind the jaw (cm)
NECK_PIVOT = (0.0, -17.0, -1.5)  # low in the neck (cm)
HEAD_FULL_Y = -10.5  # rest height above which the head weight is 1 (below the chin)
CORNEA_COS = 0.8  # sclera vertices this close to the gaze axis are cornea: not fitted


def open_rim(faces: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Vertices in ``lo..hi`` on the mesh's open boundary (edges used by one triangle): the neck's base."""
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    uniq, count = np.unique(edges, axis=0, return_counts=True)
    rim = np.unique(uniq[count == 1])
    return rim[(rim >= lo) & (rim <= hi)]


def harmonic_weights(v: np.ndarray, faces: np.ndarray, ones: np.ndarray, zeros: np.ndarray) -> np.ndarray:
    """Per-vertex weights, 1 on ``ones`` (mask), 0 on ``zeros`` (indices), harmonic in between.

    Solves the graph Laplace equation with inverse-edge-length weights: the smoothest fade the mesh
    allows, so a partial rotation stretches the neck as little as possible.
    """
    import scipy.sparse as sp
    from scipy.sparse.linalg import spsolve

    n = len(v)
    edges = np.unique(np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), 1), axis=0)
    length = np.linalg.norm(v[edges[:, 0]] - v[edges[:, 1]], axis=1).astype(np.float64)
    k = 1.0 / np.maximum(length, 1e-3)
    adj = sp.coo_matrix(
        (np.r_[k, k], (np.r_[edges[:, 0], edges[:, 1]], np.r_[edges[:, 1], edges[:, 0]])), shape=(n, n)
    ).tocsr()
    lap = (sp.diags(np.asarray(adj.sum(1)).ravel()) - adj).tocsr()
    known = np.full(n, np.nan)
    known[ones] = 1.0
    known[zeros] = 0.0
    free = np.nonzero(np.isnan(known))[0]
    fixed = np.nonzero(~np.isnan(known))[0]
    lap_free = lap[free][:, free]
    isolated = np.asarray(abs(lap_free).sum(1)).ravel() == 0  # vertices used by no triangle
    known[free[isolated]] = 1.0
    free, fixed = free[~isolated], np.nonzero(~np.isnan(known))[0]
    lap_free = lap[free][:, free].tocsc()
    known[free] = spsolve(lap_free, -(lap[free][:, fixed] @ known[fixed]))
    return np.clip(known, 0.0, 1.0)


def _expression_group(name: str) -> str:
    for prefix, group in (
        ("brow", "brows"),
        ("eye", "eyes"),
        ("cheek", "cheeks"),
        ("nose", "nose"),
        ("mouthSmile", "smile"),
        ("jaw", "jaw"),
        ("mouth", "mouth"),
    ):
        if name.startswith(prefix):
            return group
    return "other"


def sphere_centre(points: torch.Tensor) -> torch.Tensor:
    """Least-squares sphere centre of ``(B, K, 3)`` points, ``(B, 3)``; differentiable."""
    mean = points.mean(dim=1, keepdim=True)
    p = points - mean  # centring keeps the 4x4 normal equations well conditioned in float32
    a = torch.cat([2.0 * p, torch.ones_like(p[..., :1])], dim=-1)
    b = (p * p).sum(-1, keepdim=True)
    ata = a.transpose(1, 2) @ a
    sol = torch.linalg.solve(ata, a.transpose(1, 2) @ b)
    return sol[:, :3, 0] + mean[:, 0]


class ICTFaceModel(FaceModel):
    """The ICT Face Model Light. Build with ``core.face.load_face_model("ict")``.

    Args:
        path: the converted ``ict_face_model.npz``.
        n_shape: number of identity modes used (1 to 100).
        render_exclude: material names left out of ``render_faces``.
    """

    kind = "ict"

    def __init__(
        self, path: str | Path, n_shape: int = 100, render_exclude: Sequence[str] = DEFAULT_RENDER_EXCLUDE
    ) -> None:
        super().__init__()
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        v = arrays["v_template"].astype(np.float32)
        n = v.shape[0]
        if not 1 <= n_shape <= arrays["identity_basis"].shape[0]:
            raise ValueError(f"n_shape must be in 1..{arrays['identity_basis'].shape[0]}, got {n_shape}")
        self.expression_names = [str(x) for x in arrays["expression_names"]]
        self.identity_names = [str(x) for x in arrays["identity_names"][:n_shape]]
        self.materials = [str(x) for x in arrays["materials"]]
        self.vertex_indices = json.loads(str(arrays["vertex_indices_json"]))

        self.register_buffer("v_template", torch.from_numpy(v))
        self.register_buffer(
            "identity_basis",
            torch.from_numpy(arrays["identity_basis"][:n_shape].reshape(n_shape, n * 3).astype(np.float32)),
        )
        self.register_buffer(
            "expression_basis",
            torch.from_numpy(arrays["expression_basis"].reshape(len(self.expression_names), n * 3).astype(np.float32)),
        )
        faces = arrays["faces"].astype(np.int64)
        tri_material = arrays["quad_material"][arrays["face_to_quad"]]
        unknown = set(render_exclude) - set(self.materials)
        if unknown:
            raise ValueError(f"unknown materials in render_exclude: {sorted(unknown)}; known: {self.materials}")
        excluded = [self.materials.index(m) for m in render_exclude]
        keep = ~np.isin(tri_material, excluded)
        self.register_buffer("faces", torch.from_numpy(faces))
        self.register_buffer("render_faces", torch.from_numpy(faces[keep]))
        self.register_buffer("face_material", torch.from_numpy(tri_material.astype(np.int64)))

        self.regions = self._build_regions(n)
        self._setup_eyes(v)
        self._setup_pose_weights(v, faces)
        self.landmark_embedding = vertex_landmarks(
            torch.tensor(self.vertex_indices["idx_to_landmark_verts"]), self.faces
        )
        self._jaw_channels = [self.expression_names.index(c) for c in ("jawOpen", "jawLeft", "jawRight")]
        self._setup_controls()
        # identity blends of recent shapes and basis columns of recent vertex subsets (``shaped``)
        self._identity_cache = TensorCache(size=8)
        self._subset_cache = TensorCache(size=8)

    # ------------------------------------------------------------------ set-up
    @staticmethod
    def _build_regions(n: int) -> dict[str, torch.Tensor]:
        regions = {}
        for name, (lo, hi) in REGION_RANGES.items():
            m = torch.zeros(n, dtype=torch.bool)
            m[lo : hi + 1] = True
            regions[name] = m
        for name, parts in REGION_UNIONS.items():
            regions[name] = torch.stack([regions[p] for p in parts]).any(0)
        return regions

    def _setup_eyes(self, v: np.ndarray) -> None:
        for side in ("left", "right"):
            lo, hi = REGION_RANGES[f"sclera_{side}"]
            sclera = v[lo : hi + 1].astype(np.float64)
            centre = sphere_centre(torch.from_numpy(sclera)[None])[0].numpy()
            d = sclera - centre
            cos_to_axis = d[:, 2] / np.linalg.norm(d, axis=1)
            support = lo + np.nonzero(cos_to_axis < CORNEA_COS)[0]
            self.register_buffer(f"_eye_support_{side}", torch.from_numpy(support.astype(np.int64)))
            e_lo, e_hi = REGION_RANGES[f"eyeball_{side}"]
            self.register_buffer(f"_eyeball_{side}", torch.arange(e_lo, e_hi + 1))

    def _setup_pose_weights(self, v: np.ndarray, faces: np.ndarray) -> None:
        rim = open_rim(faces, *REGION_RANGES["head_neck"])
        w = harmonic_weights(v, faces, ones=v[:, 1] >= HEAD_FULL_Y, zeros=rim)
        self.register_buffer("head_weights", torch.from_numpy(w.astype(np.float32)))
        self.register_buffer("neck_weights", self.head_weights.clone())
        self.register_buffer("head_pivot", torch.tensor(HEAD_PIVOT))
        self.register_buffer("neck_pivot", torch.tensor(NECK_PIVOT))
        base = torch.zeros(len(v), dtype=torch.bool)
        base[torch.from_numpy(rim)] = True
        self.regions["neck_base"] = base

    def _setup_controls(self) -> None:
        add = self._add_control
        self._add_pose_controls()
        add(Control("jaw_open", "jaw", 0, 1, (("jaw", (0,)),), label="jaw open"))
        add(Control("jaw_sideways", "jaw", -1, 1, (("jaw", (1,)),), label="jaw sideways"))
        self._add_gaze_controls()
        blink = tuple(("expression", (self.expression_names.index(c),)) for c in ("eyeBlink_L", "eyeBlink_R"))
        add(Control("blink", "eyes", 0, 1, blink, label="blink"))
        smile = tuple(("expression", (self.expression_names.index(c),)) for c in ("mouthSmile_L", "mouthSmile_R"))
        add(Control("smile", "smile", 0, 1, smile, label="smile"))
        for i, name in enumerate(self.expression_names):
            add(Control(name, _expression_group(name), 0, 1, (("expression", (i,)),), label=name))
        self._add_shape_controls()

    # ------------------------------------------------------------------ sizes
    @property
    def n_vertices(self) -> int:
        return self.v_template.shape[0]

    @property
    def n_shape(self) -> int:
        return self.identity_basis.shape[0]

    # ------------------------------------------------------------------ geometry
    def _effective_expression(self, params: FaceParams) -> torch.Tensor:
        expr = params.expression
        open_, side = params.jaw[:, 0], params.jaw[:, 1]
        if not (torch.count_nonzero(params.jaw) or params.jaw.requires_grad):
            return expr
        add = torch.zeros_like(expr)
        i_open, i_left, i_right = self._jaw_channels
        add[:, i_open] = open_
        add[:, i_left] = side.clamp(min=0)
        add[:, i_right] = (-side).clamp(min=0)
        return expr + add

    def _check(self, params: FaceParams) -> None:
        if params.shape.shape[1] > self.n_shape:
            raise ValueError(
                f"params.shape has {params.shape.shape[1]} coefficients; this ICT model uses {self.n_shape}"
            )
        if params.expression.shape[1] != self.n_expression:
            raise ValueError(
                f"params.expression has {params.expression.shape[1]} channels; ICT has "
                f"{self.n_expression} ({', '.join(self.expression_names[:3])}, ...)"
            )

    def shaped(self, params: FaceParams, vertex_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Identity and expression blendshapes only (no gaze, no pose): ``(B, N or L, 3)`` cm.

        The identity blend ``shape @ identity_basis`` (the larger product) is cached on the shape's values
        (see ``clear_caches``), as are the basis columns of a vertex subset: the shape stays the same over a
        clip or a webcam session while the expression changes every frame. A shape that requires grad (a
        fit) is never cached. Results equal the uncached computation exactly.
        """
        self._check(params)
        b = params.batch_size
        expr = self._effective_expression(params)
        template, _, expression = self._basis_subset(vertex_ids)
        offsets = self._identity_offsets(params.shape, vertex_ids) + expr @ expression
        return template + offsets.view(b, -1, 3)

    def _basis_subset(self, vertex_ids: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Template ``(L, 3)``, identity ``(S, 3L)`` and expression ``(E, 3L)`` bases of ``vertex_ids`` (all
        vertices for None)."""
        if vertex_ids is None:
            return self.v_template, self.identity_basis, self.expression_basis

        def columns() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            cols = (vertex_ids[:, None] * 3 + torch.arange(3, device=vertex_ids.device)).reshape(-1)
            return self.v_template[vertex_ids], self.identity_basis[:, cols], self.expression_basis[:, cols]

        return self._subset_cache.get(self.expression_basis, (vertex_ids,), columns)

    def _identity_offsets(self, shape: torch.Tensor, vertex_ids: torch.Tensor | None) -> torch.Tensor:
        """``shape (B, S) @ identity basis``: ``(B, 3N or 3L)`` vertex offsets, cached unless ``shape`` needs grad."""
        identity = self._basis_subset(vertex_ids)[1][: shape.shape[1]]
        if shape.requires_grad:
            return shape @ identity

        def blend() -> torch.Tensor:
            with torch.no_grad():
                return shape @ identity

        return self._identity_cache.get(self.identity_basis, (shape, vertex_ids), blend)

    def clear_caches(self) -> None:
        """Forget the cached identity blends and basis columns (only needed after editing the bases in place;
        moving the model to another device or dtype empties them by itself)."""
        self._identity_cache.clear()
        self._subset_cache.clear()

    def eye_support(self, side: str) -> torch.Tensor:
        """Vertex ids ``(K,)`` of the sclera points the eyeball centre of ``side`` ("left"/"right") is fitted to."""
        return getattr(self, f"_eye_support_{side}")

    def eye_centres(self, params: FaceParams) -> torch.Tensor:
        """Eyeball centres ``(B, 2, 3)`` (subject's left, right) in the unposed frame."""
        centres = [sphere_centre(self.shaped(params, self.eye_support(side))) for side in ("left", "right")]
        return torch.stack(centres, dim=1)

    def forward(self, params: FaceParams, vertex_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Vertices ``(B, N, 3)`` in the model frame (cm), or only ``vertex_ids`` ``(L,)`` -> ``(B, L, 3)``."""
        verts = self.shaped(params, vertex_ids)
        verts = self._turn_eyes(verts, params, vertex_ids)
        return self._pose(verts, params, vertex_ids)

    def _turn_eyes(self, verts: torch.Tensor, params: FaceParams, vertex_ids: torch.Tensor | None) -> torch.Tensor:
        if not (torch.count_nonzero(params.gaze) or params.gaze.requires_grad):
            return verts
        centres = self.eye_centres(params)
        rots = euler_to_matrix(torch.cat([params.gaze, torch.zeros_like(params.gaze[..., :1])], -1))
        out = verts.clone()
        for e, side in enumerate(("left", "right")):
            ball = getattr(self, f"_eyeball_{side}")
            if vertex_ids is None:
                pos = ball
            else:
                # positions inside the requested subset that belong to this eyeball
                pos = torch.nonzero((vertex_ids >= ball[0]) & (vertex_ids <= ball[-1])).flatten()
                if pos.numel() == 0:
                    continue
            c = centres[:, e, None, :]
            out[:, pos] = (verts[:, pos] - c) @ rots[:, e].transpose(1, 2) + c
        return out

    def _pose(self, verts: torch.Tensor, params: FaceParams, vertex_ids: torch.Tensor | None) -> torch.Tensor:
        w_head, w_neck = self.head_weights, self.neck_weights
        if vertex_ids is not None:
            w_head, w_neck = w_head[vertex_ids], w_neck[vertex_ids]
        out = verts
        for angles, weights, pivot in ((params.head, w_head, self.head_pivot), (params.neck, w_neck, self.neck_pivot)):
            if not (torch.count_nonzero(angles) or angles.requires_grad):
                continue
            rel = out - pivot
            moved = rel @ euler_to_matrix(angles).transpose(1, 2)  # weight 1: one matrix for the batch
            w = weights[None, :, None].to(rel.dtype)
            moved = torch.where(w > 0, moved, rel)
            blend = torch.nonzero((weights > 0) & (weights < 1)).flatten()
            if blend.numel():
                # partial weights: angles scaled per vertex, (B, L_blend, 3, 3)
                rot = euler_to_matrix(angles[:, None, :] * weights[None, blend, None].to(angles.dtype))
                moved = moved.index_copy(1, blend, (rot @ rel[:, blend, :, None])[..., 0])
            out = moved + pivot
        return out
