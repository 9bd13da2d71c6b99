"""Fit ICT parameters to MediaPipe landmarks: robust Levenberg-Marquardt, batched in torch.

Observations are landmarks in the crop's **normalised** coordinates (``core.coords``): ``obs (B, L, 3)`` =
(x, y, z) with z MediaPipe's relative depth in the same units as x (smaller nearer, any offset).

Model of a landmark (exactly the ICT model's own geometry restricted to the embedded surface points):
``P = L0 + shape @ Ls + expression @ Le`` (the landmark's barycentric mix of the vertex blendshapes, cm),
iris points turned by the eye's gaze about the eyeball centre, then the rigid head rotation about
``model.head_pivot`` (every embedded vertex has head weight 1), then the weak-perspective camera
``x = s X + tx, y = -s Y + ty``, depth ``-s Z + d`` with a free depth offset ``d``.

Unknowns per frame: camera (s, tx, ty), depth offset d, head rotation (kept as a matrix, updated by small
rotations, reported as yaw/pitch/roll), the 53 expressions (box-constrained to [0, 1] by a projected
Newton step with an active set), gaze yaw/pitch per eye. Identity (the first K coefficients) is either
shared by the whole batch (one person: a photo, or the identity frames of a video) or fixed (tracking).
The shared block is eliminated with a Schur complement, so a batch of frames costs one small solve each.

Cost, in cm in the model frame (residuals divided by the camera scale): per landmark a Huber loss on the
2D error and, weighted by ``depth_weight``, on the depth error; a Gaussian prior on identity, an L2 plus
L1 (sparsity) prior on expressions and a weak prior on gaze. Initialisation is closed form: a weighted
Umeyama similarity between the current 3D landmarks and the observations.
"""

from __future__ import annotations

import logging
import math
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from core.face.params import FaceParams
from core.face.rotation import matrix_to_euler
from core.fit.embedding import LandmarkMap

log = logging.getLogger(__name__)

DEG = math.pi / 180.0


@contextmanager
def single_thread():
    """Run torch on one thread: the fit's matrices are tiny, and several intra-op threads only spin and
    wait, which is many times slower when the CPU is shared (measured: 0.2 s vs several s per photo)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class FitOptions:
    """Weights and iteration counts of the fit (units: cm, degrees).

    Attributes:
        n_shape: identity coefficients fitted (the first K of the model's).
        sigma_cm: expected landmark noise; data residuals are divided by it.
        huber_cm: 2D error beyond which a landmark's influence stops growing (robustness).
        depth_weight: weight of MediaPipe's depth relative to x and y (it is noisy: keep it weak).
        shape_prior: weight of ``|shape|^2`` (identity coefficients are ~N(0, 1)).
        expression_l2, expression_l1: weights of ``|e|^2`` and ``sum(e)`` (sparsity) of the expressions.
        gaze_prior_deg: gaze standard deviation of the prior.
        iterations: LM iterations for a photo (the first ``rigid_iterations`` move only camera and pose).
        track_iterations: LM iterations per video frame (warm-started from the previous frame).
        damping: initial Levenberg-Marquardt damping, relative to the diagonal (larger values reject fewer
            steps on noisy landmarks but slow down the expressions' convergence).
        fit_gaze: fit the eyeballs to the iris points (else gaze stays 0).
    """

    n_shape: int = 50
    sigma_cm: float = 0.1
    huber_cm: float = 0.3
    depth_weight: float = 0.05
    shape_prior: float = 0.5
    expression_l2: float = 0.1
    expression_l1: float = 0.1
    gaze_prior_deg: float = 25.0
    iterations: int = 30
    rigid_iterations: int = 2
    track_iterations: int = 2
    damping: float = 1e-3
    fit_gaze: bool = True


@dataclass
class FitState:
    """Current estimate for a batch of B frames (float64).

    ``scale (B,)``, ``trans (B, 2)`` (tx, ty), ``depth (B,)`` offset, ``rot (B, 3, 3)`` head rotation,
    ``expression (B, E)``, ``gaze (B, 2, 2)`` degrees, ``shape (B, K)`` (identical rows when shared).
    """

    scale: torch.Tensor
    trans: torch.Tensor
    depth: torch.Tensor
    rot: torch.Tensor
    expression: torch.Tensor
    gaze: torch.Tensor
    shape: torch.Tensor

    def clone(self) -> FitState:
        return FitState(
            *(t.clone() for t in (self.scale, self.trans, self.depth, self.rot, self.expression, self.gaze, self.shape))
        )

    def select(self, index) -> FitState:
        return FitState(
            *(t[index] for t in (self.scale, self.trans, self.depth, self.rot, self.expression, self.gaze, self.shape))
        )

    @property
    def batch_size(self) -> int:
        return self.scale.shape[0]


# ------------------------------------------------------------------------------------------ geometry
def _skew(v: torch.Tensor) -> torch.Tensor:
    """``(..., 3) -> (..., 3, 3)`` cross-product matrices: ``skew(a) @ b = a x b``."""
    z = torch.zeros_like(v[..., 0])
    return torch.stack([z, -v[..., 2], v[..., 1], v[..., 2], z, -v[..., 0], -v[..., 1], v[..., 0], z], -1).reshape(
        *v.shape, 3
    )


def _rodrigues(w: torch.Tensor) -> torch.Tensor:
    """Axis-angle ``(B, 3)`` radians to rotation matrices ``(B, 3, 3)``."""
    theta = w.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    k = _skew(w / theta)
    t = theta[..., None]
    eye = torch.eye(3, dtype=w.dtype, device=w.device).expand_as(k)
    return eye + torch.sin(t) * k + (1.0 - torch.cos(t)) * (k @ k)


def _gaze_matrices(gaze: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eye rotations ``Ry(yaw) Rx(-pitch)`` of ``gaze (B, 2, 2)`` degrees and their derivatives per degree."""
    a, b = gaze[..., 0] * DEG, -gaze[..., 1] * DEG
    ca, sa, cb, sb = torch.cos(a), torch.sin(a), torch.cos(b), torch.sin(b)
    o, z = torch.ones_like(a), torch.zeros_like(a)

    def mat(*rows: torch.Tensor) -> torch.Tensor:
        return torch.stack(rows, -1).reshape(*a.shape, 3, 3)

    ry, dry = mat(ca, z, sa, z, o, z, -sa, z, ca), mat(-sa, z, ca, z, z, z, -ca, z, -sa)
    rx, drx = mat(o, z, z, z, cb, -sb, z, sb, cb), mat(z, z, z, z, -sb, -cb, z, cb, -sb)
    return ry @ rx, (dry @ rx) * DEG, -(ry @ drx) * DEG


def umeyama(
    src: torch.Tensor, dst: torch.Tensor, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weighted similarity ``dst ~ s R src + t`` for ``(B, L, 3)`` points; returns s (B,), R (B,3,3), t (B,3)."""
    w = (weights / weights.sum(-1, keepdim=True))[..., None]
    mu_s, mu_d = (w * src).sum(1), (w * dst).sum(1)
    a, b = src - mu_s[:, None], dst - mu_d[:, None]
    cov = (w * b).transpose(1, 2) @ a
    u, sig, vt = torch.linalg.svd(cov)
    d = torch.ones_like(sig)
    d[:, 2] = torch.sign(torch.det(u @ vt))
    rot = u @ torch.diag_embed(d) @ vt
    var = (w * a * a).sum((1, 2))
    s = (sig * d).sum(-1) / var
    t = mu_d - s[:, None] * (rot @ mu_s[..., None])[..., 0]
    return s, rot, t


class LandmarkModel:
    """The ICT model restricted to the landmarks of a ``LandmarkMap``: exact, linear bases (float64).

    Attributes: ``base (L, 3)``, ``shape_basis (K, L, 3)``, ``expr_basis (E, L, 3)`` (cm),
    ``eye_of (L,)`` (0: subject's left eyeball, 1: right, -1: skin), ``pivot (3,)``.
    """

    def __init__(self, model, lmap: LandmarkMap, n_shape: int) -> None:
        if model.kind != "ict":
            raise ValueError(
                "LandmarkModel needs the ICT model (its linear blendshapes); use AutogradFitter for other models"
            )
        if not 1 <= n_shape <= model.n_shape:
            raise ValueError(f"n_shape must be in 1..{model.n_shape}, got {n_shape}")
        from core.face.ict import REGION_RANGES

        dt = torch.float64
        faces = model.faces[lmap.embedding.face_ids]  # (L, 3) vertex ids
        bary = lmap.embedding.bary.to(dt)
        weights = model.head_weights[faces]
        if (weights < 1).any():
            raise ValueError("a landmark lies on vertices that do not move rigidly with the head")
        n = model.n_vertices
        self.base = (model.v_template.to(dt)[faces] * bary[..., None]).sum(1)
        self.shape_basis = self._mix(model.identity_basis[:n_shape].view(n_shape, n, 3), faces, bary)
        self.expr_basis = self._mix(model.expression_basis.view(-1, n, 3), faces, bary)
        eye_of = torch.full((len(faces),), -1, dtype=torch.long)
        for e, side in enumerate(("left", "right")):
            lo, hi = REGION_RANGES[f"eyeball_{side}"]
            inside = ((faces >= lo) & (faces <= hi)).all(1)
            if (((faces >= lo) & (faces <= hi)).any(1) & ~inside).any():
                raise ValueError("a landmark triangle straddles an eyeball and the skin")
            eye_of[inside] = e
        self.eye_of = eye_of
        self.pivot = model.head_pivot.to(dt)
        # eyeball centres: sphere fit to the back of each sclera, as the model does (expressions do not move
        # the sclera in ICT, so the centres depend on the identity only; checked here)
        self._support = []
        for side in ("left", "right"):
            ids = model.eye_support(side)
            if model.expression_basis.view(-1, n, 3)[:, ids].abs().max() > 0:
                raise ValueError("ICT expressions move the sclera; eye centres would depend on them")
            self._support.append(
                (model.v_template.to(dt)[ids], model.identity_basis[:n_shape].view(n_shape, n, 3)[:, ids].to(dt))
            )
        self._centre_cache: tuple[torch.Tensor, torch.Tensor] | None = None
        self.n_shape = n_shape
        self.n_expression = self.expr_basis.shape[0]
        # the bases as (3, L * K): a rotation applied to every landmark at once is a single matrix product
        self.shape_flat = self.shape_basis.permute(2, 1, 0).reshape(3, -1).contiguous()
        self.expr_flat = self.expr_basis.permute(2, 1, 0).reshape(3, -1).contiguous()

    @staticmethod
    def _mix(basis: torch.Tensor, faces: torch.Tensor, bary: torch.Tensor) -> torch.Tensor:
        return (basis[:, faces].to(bary.dtype) * bary[None, :, :, None]).sum(2)

    @property
    def n_landmarks(self) -> int:
        return self.base.shape[0]

    def rest(self, shape: torch.Tensor, expression: torch.Tensor) -> torch.Tensor:
        """Landmarks before gaze and pose ``(B, L, 3)`` cm."""
        return (
            self.base
            + torch.einsum("bk,klc->blc", shape, self.shape_basis)
            + torch.einsum("be,elc->blc", expression, self.expr_basis)
        )

    def eye_centres(self, shape: torch.Tensor) -> torch.Tensor:
        """Eyeball centres ``(B, 2, 3)`` (subject's left, right), as ``ICTFaceModel.eye_centres``; the last
        result is cached because the identity changes far less often than it is asked for."""
        from core.face.ict import sphere_centre

        cache = self._centre_cache
        if cache is not None and cache[0].shape == shape.shape and torch.equal(cache[0], shape):
            return cache[1]
        out = []
        for base, sb in self._support:
            out.append(sphere_centre(base + torch.einsum("bk,knc->bnc", shape, sb)))
        centres = torch.stack(out, 1)
        self._centre_cache = (shape.clone(), centres)
        return centres


@dataclass
class _Eval:
    pred: torch.Tensor  # (B, L, 3) normalised x, y, depth
    posed: torch.Tensor  # (B, L, 3) model frame after pose (cm)
    eye_rot: torch.Tensor  # (B, L, 3, 3) eye rotation per landmark (identity on skin)
    eye_rel: torch.Tensor  # (B, L, 3) point minus eyeball centre (zero on skin)


class LandmarkFitter:
    """Robust LM fit of ICT parameters to landmarks (see the module docstring).

    Args:
        model: an ``ICTFaceModel``.
        lmap: the landmark map (default: the committed ICT embedding).
        options: ``FitOptions``.
    """

    def __init__(self, model, lmap: LandmarkMap | None = None, options: FitOptions | None = None) -> None:
        from core.fit.embedding import default_landmark_map

        self.model = model
        self.options = options or FitOptions()
        self.lmap = lmap or default_landmark_map(model)
        self.lm = LandmarkModel(model, self.lmap, self.options.n_shape)
        self.weights = self.lmap.weights.to(torch.float64)
        self.iris = self.lm.eye_of >= 0
        self.n_expression = self.lm.n_expression
        self._proj = torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64)  # x = sX, y = -sY, depth = -sZ
        self._unit = torch.eye(3, dtype=torch.float64)[None, None]

    # ------------------------------------------------------------------ evaluation
    def _evaluate(self, st: FitState) -> _Eval:
        lm = self.lm
        p = lm.rest(st.shape, st.expression)
        b, n = p.shape[:2]
        eye_rot = torch.eye(3, dtype=p.dtype).expand(b, n, 3, 3).clone()
        eye_rel = torch.zeros_like(p)
        if self.iris.any():
            centres = lm.eye_centres(st.shape)  # (B, 2, 3)
            rg, _, _ = _gaze_matrices(st.gaze)  # (B, 2, 3, 3)
            idx = lm.eye_of[self.iris]
            rel = p[:, self.iris] - centres[:, idx]
            eye_rot[:, self.iris] = rg[:, idx]
            eye_rel[:, self.iris] = rel
            p = p.clone()
            p[:, self.iris] = (rg[:, idx] @ rel[..., None])[..., 0] + centres[:, idx]
        posed = (p - lm.pivot) @ st.rot.transpose(1, 2) + lm.pivot
        s = st.scale[:, None]
        pred = torch.stack(
            [
                s * posed[..., 0] + st.trans[:, None, 0],
                -s * posed[..., 1] + st.trans[:, None, 1],
                -s * posed[..., 2] + st.depth[:, None],
            ],
            -1,
        )
        return _Eval(pred, posed, eye_rot, eye_rel)

    def _robust(self, err: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Huber loss and IRLS weight of errors (cm)."""
        k = self.options.huber_cm
        a = err.abs()
        loss = torch.where(a <= k, 0.5 * a * a, k * (a - 0.5 * k))
        weight = torch.where(a <= k, torch.ones_like(a), k / a.clamp(min=1e-12))
        return loss, weight

    def _residuals(
        self, ev: _Eval, obs: torch.Tensor, s_ref: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Residuals ``(B, L, 3)`` in sigma units, robust per-frame data cost ``(B,)``, IRLS weights (B, L, 3)."""
        o = self.options
        r = (ev.pred - obs) / (s_ref[:, None, None] * o.sigma_cm)
        e2d = r[..., :2].norm(dim=-1) * o.sigma_cm
        l2d, w2d = self._robust(e2d)
        lz, wz = self._robust(r[..., 2].abs() * o.sigma_cm)
        w = self.weights
        cost = (w * (l2d + o.depth_weight * lz)).sum(-1) / o.sigma_cm**2
        irls = torch.stack([w * w2d, w * w2d, w * wz * o.depth_weight], -1)
        return r, cost, irls

    def _prior_cost(self, st: FitState, shared: bool) -> torch.Tensor:
        o = self.options
        e = st.expression
        cost = 0.5 * o.expression_l2 * (e * e).sum(-1) + o.expression_l1 * e.sum(-1)
        if o.fit_gaze:
            cost = cost + 0.5 * (st.gaze**2).sum((1, 2)) / o.gaze_prior_deg**2
        shape_cost = 0.5 * o.shape_prior * (st.shape**2).sum(-1)
        return cost + (shape_cost / st.batch_size if shared else shape_cost)

    def cost(
        self, st: FitState, obs: torch.Tensor, s_ref: torch.Tensor, shared: bool, ev: _Eval | None = None
    ) -> torch.Tensor:
        """Per-frame total cost ``(B,)`` (``ev``: the evaluation of ``st`` when already at hand)."""
        _, data, _ = self._residuals(self._evaluate(st) if ev is None else ev, obs, s_ref)
        return data + self._prior_cost(st, shared)

    # ------------------------------------------------------------------ jacobians
    def _jacobians(
        self, st: FitState, ev: _Eval, s_ref: torch.Tensor, rigid: bool, fit_shape: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-frame ``(B, 3L, P)`` and shape ``(B, 3L, K)`` Jacobians of the residuals (sigma units).

        Per-frame layout: s, tx, ty, d, rotation (3), then unless ``rigid``: expressions (E), gaze (4).
        """
        b, n = ev.posed.shape[:2]
        dt = ev.posed.dtype
        s = st.scale[:, None, None]
        proj = self._proj  # d pred / d (s * posed)
        cols = [ev.posed * proj]  # d/ds
        unit = self._unit.expand(b, n, 3, 3)
        cols += [unit[..., 0], unit[..., 1], unit[..., 2]]  # tx, ty, d
        # rotation: posed' = exp(w) (posed - pivot) + pivot -> d posed / dw = -skew(posed - pivot)
        drot = -_skew(ev.posed - self.lm.pivot) * (s[..., None] * proj[:, None])  # (B, L, 3, 3)
        blocks = [torch.stack(cols, -1), drot]
        # chain through the eye rotation (iris points only), the head rotation and the camera
        head = st.rot * (s * proj[:, None])  # (B, 3, 3)
        iris = self.iris
        full_iris = head[:, None] @ ev.eye_rot[:, iris]  # (B, Li, 3, 3)
        if not rigid:
            blocks.append(self._basis_jacobian(head, full_iris, self.lm.expr_flat, self.lm.expr_basis))
            if self.options.fit_gaze:
                _, d_yaw, d_pitch = _gaze_matrices(st.gaze)  # (B, 2, 3, 3)
                g = torch.zeros(b, n, 3, 4, dtype=dt)
                if iris.any():
                    idx = self.lm.eye_of[iris]
                    rel = ev.eye_rel[:, iris, :, None]
                    dy = (head[:, None] @ d_yaw[:, idx] @ rel)[..., 0]  # (B, Li, 3)
                    dp = (head[:, None] @ d_pitch[:, idx] @ rel)[..., 0]
                    left = (idx == 0)[None, :, None]
                    gi = torch.stack(
                        [
                            torch.where(left, dy, 0 * dy),
                            torch.where(left, dp, 0 * dp),
                            torch.where(left, 0 * dy, dy),
                            torch.where(left, 0 * dp, dp),
                        ],
                        -1,
                    )
                    g[:, iris] = gi
                blocks.append(g)
        jf = torch.cat(blocks, -1) / (s_ref[:, None, None, None] * self.options.sigma_cm)
        js = None
        if fit_shape:
            js = self._basis_jacobian(head, full_iris, self.lm.shape_flat, self.lm.shape_basis)
            js = js / (s_ref[:, None, None, None] * self.options.sigma_cm)
            js = js.reshape(b, n * 3, -1)
        return jf.reshape(b, n * 3, -1), js

    def _basis_jacobian(
        self, head: torch.Tensor, full_iris: torch.Tensor, flat: torch.Tensor, basis: torch.Tensor
    ) -> torch.Tensor:
        """``(B, L, 3, K)``: the head rotation (scaled by the camera) applied to every basis vector, with the
        eye rotation in between for the iris points."""
        b, n, k = head.shape[0], basis.shape[1], basis.shape[0]
        out = (head @ flat).view(b, 3, n, k).permute(0, 2, 1, 3)
        if self.iris.any():
            out = out.clone()
            out[:, self.iris] = torch.einsum("blij,klj->blik", full_iris, basis[:, self.iris])
        return out

    # ------------------------------------------------------------------ solving
    def _step(
        self,
        st: FitState,
        ev: _Eval,
        obs: torch.Tensor,
        s_ref: torch.Tensor,
        rigid: bool,
        fit_shape: bool,
        shared: bool,
        damping: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One damped, bound-projected Gauss-Newton step (per-frame delta, shape delta) from ``st`` and its
        evaluation ``ev``; ``damping (B,)``."""
        o = self.options
        r, _, irls = self._residuals(ev, obs, s_ref)
        jf, js = self._jacobians(st, ev, s_ref, rigid, fit_shape)
        b = r.shape[0]
        w = irls.reshape(b, -1, 1)
        r = r.reshape(b, -1, 1)
        wjf = w * jf
        hff = jf.transpose(1, 2) @ wjf
        gf = (wjf.transpose(1, 2) @ r)[..., 0]
        npf = hff.shape[-1]
        if not rigid:
            e0, e1 = 7, 7 + self.n_expression
            ex = st.expression
            idx = torch.arange(e0, e1)
            hff[:, idx, idx] += o.expression_l2
            gf[:, e0:e1] += o.expression_l2 * ex + o.expression_l1
            if o.fit_gaze:
                gi = torch.arange(e1, e1 + 4)
                hff[:, gi, gi] += 1.0 / o.gaze_prior_deg**2
                gf[:, e1 : e1 + 4] += st.gaze.reshape(b, 4) / o.gaze_prior_deg**2
            # active set: expressions at a bound whose gradient pushes outwards stay there
            blocked = ((ex <= 0) & (gf[:, e0:e1] > 0)) | ((ex >= 1) & (gf[:, e0:e1] < 0))
            free = torch.ones(b, npf, dtype=torch.bool)
            free[:, e0:e1] = ~blocked
        else:
            free = torch.ones(b, npf, dtype=torch.bool)
        diag = torch.diagonal(hff, dim1=1, dim2=2)
        hff = hff + torch.diag_embed(damping[:, None] * diag + 1e-9)
        m = free.to(hff.dtype)
        hff = hff * m[:, :, None] * m[:, None, :] + torch.diag_embed(1.0 - m)
        gf = gf * m
        if not fit_shape:
            return torch.linalg.solve(hff, gf), None
        wjs = w * js
        hfs = (jf.transpose(1, 2) @ wjs) * m[:, :, None]  # (B, P, K)
        hss = js.transpose(1, 2) @ wjs  # (B, K, K)
        gs = (wjs.transpose(1, 2) @ r)[..., 0]
        a = torch.linalg.solve(hff, torch.cat([gf[..., None], hfs], -1))  # H_ff^-1 [g_f, H_fs]
        ag, ah = a[..., 0], a[..., 1:]
        schur = hss - hfs.transpose(1, 2) @ ah
        rhs = gs - (hfs.transpose(1, 2) @ ag[..., None])[..., 0]
        if shared:  # one identity: sum the frames' reduced systems
            schur, rhs, hss = schur.sum(0, keepdim=True), rhs.sum(0, keepdim=True), hss.sum(0, keepdim=True)
            shape = st.shape[:1]
        else:
            shape = st.shape
        k = hss.shape[-1]
        lam = damping.max() if shared else damping[:, None]
        extra = o.shape_prior + lam * (torch.diagonal(hss, dim1=1, dim2=2) + o.shape_prior)
        schur = schur + torch.diag_embed(extra.expand(schur.shape[0], k))
        rhs = rhs + o.shape_prior * shape
        ds = torch.linalg.solve(schur, rhs)  # (1 or B, K)
        df = ag - (ah @ ds.expand(b, k)[..., None])[..., 0]
        return df, ds

    def _apply(self, st: FitState, df: torch.Tensor, ds: torch.Tensor | None, rigid: bool) -> FitState:
        out = st.clone()
        out.scale = st.scale - df[:, 0]
        out.trans = st.trans - df[:, 1:3]
        out.depth = st.depth - df[:, 3]
        out.rot = _rodrigues(-df[:, 4:7]) @ st.rot
        if not rigid:
            e1 = 7 + self.n_expression
            out.expression = (st.expression - df[:, 7:e1]).clamp(0.0, 1.0)
            if self.options.fit_gaze:
                out.gaze = st.gaze - df[:, e1 : e1 + 4].reshape(-1, 2, 2)
        if ds is not None:
            out.shape = st.shape - ds.expand_as(st.shape)
        return out

    def refine(
        self,
        obs: torch.Tensor,
        st: FitState,
        iterations: int,
        fit_shape: bool,
        shared: bool,
        rigid_iterations: int = 0,
        damping: float | None = None,
    ) -> FitState:
        """Levenberg-Marquardt on ``obs (B, L, 3)`` from ``st``; steps that raise the cost are retried with
        more damping (per frame when frames are independent, for the whole batch when shape is shared)."""
        with single_thread(), torch.no_grad():
            return self._refine(
                obs.to(torch.float64),
                st,
                iterations,
                fit_shape,
                shared,
                rigid_iterations,
                self.options.damping if damping is None else damping,
            )

    def _refine(
        self,
        obs: torch.Tensor,
        st: FitState,
        iterations: int,
        fit_shape: bool,
        shared: bool,
        rigid_iterations: int,
        damping0: float,
    ) -> FitState:
        damping = torch.full((st.batch_size,), damping0, dtype=torch.float64)
        s_ref = st.scale.clone()  # the cost's units (cm per normalised unit) stay fixed during a refinement
        ev = self._evaluate(st)
        before = self.cost(st, obs, s_ref, shared, ev)
        for it in range(iterations):
            rigid = it < rigid_iterations
            done = torch.zeros(st.batch_size, dtype=torch.bool)
            for _ in range(4):
                df, ds = self._step(st, ev, obs, s_ref, rigid, fit_shape and not rigid, shared, damping)
                cand = self._apply(st, df, ds, rigid)
                ev_cand = self._evaluate(cand)
                after = self.cost(cand, obs, s_ref, shared, ev_cand)
                if shared and fit_shape:  # frames coupled by the identity: accept or reject together
                    ok = (after.sum() <= before.sum()).expand_as(after)
                else:
                    ok = (after <= before) & ~done
                st = _where(ok, cand, st)
                ev = _Eval(
                    *(
                        _pick(ok, a, b)
                        for a, b in zip(
                            (ev_cand.pred, ev_cand.posed, ev_cand.eye_rot, ev_cand.eye_rel),
                            (ev.pred, ev.posed, ev.eye_rot, ev.eye_rel),
                        )
                    )
                )
                before = torch.where(ok, after, before)
                damping = torch.where(ok, (damping * 0.3).clamp(min=1e-6), torch.where(done, damping, damping * 10))
                done |= ok
                if bool(done.all()):
                    break
        return st

    # ------------------------------------------------------------------ initialisation and output
    def initial_state(
        self,
        obs: torch.Tensor,
        shape: torch.Tensor | None = None,
        expression: torch.Tensor | None = None,
        gaze: torch.Tensor | None = None,
    ) -> FitState:
        """Closed-form start: Umeyama similarity of the current 3D landmarks onto ``obs (B, L, 3)``."""
        obs = obs.to(torch.float64)
        b = obs.shape[0]
        dt = torch.float64
        shape = torch.zeros(b, self.lm.n_shape, dtype=dt) if shape is None else shape.to(dt).expand(b, -1).clone()
        expression = (
            torch.zeros(b, self.n_expression, dtype=dt)
            if expression is None
            else expression.to(dt).expand(b, -1).clone()
        )
        gaze = torch.zeros(b, 2, 2, dtype=dt) if gaze is None else gaze.to(dt).expand(b, 2, 2).clone()
        rest = self.lm.rest(shape, expression)
        target = obs * torch.tensor([1.0, -1.0, -1.0], dtype=dt)  # to y up, z towards camera
        w = self.weights.expand(b, -1)
        s, rot, t = umeyama(rest, target, w)
        # s R P + t = s (R (P - pivot) + pivot) + c  ->  c = t + s R pivot - s pivot
        piv = self.lm.pivot
        c = t + s[:, None] * ((rot @ piv) - piv)
        return FitState(s, torch.stack([c[:, 0], -c[:, 1]], -1), -c[:, 2], rot, expression, gaze, shape)

    def state_from_params(self, params: FaceParams) -> FitState:
        """Inverse of ``to_params`` (depth offset 0; shape cut to ``n_shape``)."""
        from core.face.rotation import euler_to_matrix

        p = params.to(dtype=torch.float64)
        return FitState(
            p.camera[:, 0].clone(),
            p.camera[:, 1:].clone(),
            torch.zeros_like(p.camera[:, 0]),
            euler_to_matrix(p.head),
            p.expression.clone(),
            p.gaze.clone(),
            p.shape[:, : self.lm.n_shape].clone(),
        )

    def project(self, st: FitState) -> torch.Tensor:
        """Fitted landmarks ``(B, L, 3)`` in normalised crop coordinates (x, y, depth)."""
        return self._evaluate(st).pred

    def to_params(self, st: FitState) -> FaceParams:
        """``FaceParams`` (float32) of a state; shape padded with zeros to the model's size."""
        b = st.batch_size
        shape = torch.zeros(b, self.model.n_shape, dtype=torch.float64)
        shape[:, : st.shape.shape[1]] = st.shape
        head = matrix_to_euler(st.rot)
        camera = torch.stack([st.scale, st.trans[:, 0], st.trans[:, 1]], -1)
        zeros = torch.zeros(b, 3, dtype=torch.float64)
        p = FaceParams(shape, st.expression, head, zeros, zeros[:, :2], st.gaze, camera)
        return p.to(dtype=torch.float32)

    def fit(self, obs: torch.Tensor, shared_shape: bool = True, iterations: int | None = None) -> FitState:
        """Fit from scratch: identity, expression, gaze, pose and camera for ``obs (B, L, 3)``.

        ``shared_shape``: one identity for the whole batch (one person), else one per frame.
        """
        o = self.options
        with single_thread(), torch.no_grad():
            st = self.initial_state(obs)
            return self.refine(
                obs,
                st,
                iterations or o.iterations,
                fit_shape=o.n_shape > 0,
                shared=shared_shape,
                rigid_iterations=o.rigid_iterations,
            )

    def track(self, obs: torch.Tensor, previous: FitState, iterations: int | None = None) -> FitState:
        """Fit frames with the identity of ``previous`` fixed, warm-started from it (expression, gaze), with
        the pose re-initialised in closed form from the previous frame's 3D landmarks."""
        with single_thread(), torch.no_grad():
            st = self.initial_state(obs, previous.shape, previous.expression, previous.gaze)
            return self.refine(obs, st, iterations or self.options.track_iterations, fit_shape=False, shared=False)


def _pick(mask: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-frame choice between two batched tensors."""
    return torch.where(mask.view(-1, *([1] * (x.dim() - 1))), x, y)


def _where(mask: torch.Tensor, a: FitState, b: FitState) -> FitState:
    """Per-frame choice between two states."""
    return FitState(
        *(
            _pick(mask, x, y)
            for x, y in zip(
                (a.scale, a.trans, a.depth, a.rot, a.expression, a.gaze, a.shape),
                (b.scale, b.trans, b.depth, b.rot, b.expression, b.gaze, b.shape),
            )
        )
    )
