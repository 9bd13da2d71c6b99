"""A model-agnostic landmark fitter by autograd and L-BFGS, for face models other than ICT (FLAME).

It minimises the same cost as ``LandmarkFitter`` (robust 2D landmark error plus weak depth, in cm, with
Gaussian priors on identity and expression and a weak prior on jaw and gaze) but evaluates the full model
(``model(params)``, any skinning) and lets autograd give the gradients. Slower than the ICT fitter (tens
of model evaluations per frame) and without bounds on the expressions (FLAME's are unbounded).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from core.face.params import FaceParams
from core.face.rotation import matrix_to_euler
from core.fit.embedding import LandmarkMap
from core.fit.fitter import FitOptions, single_thread, umeyama

log = logging.getLogger(__name__)


@dataclass
class GenericState:
    """``params`` (FaceParams, float32) plus the per-frame depth offset ``depth (B,)``."""

    params: FaceParams
    depth: torch.Tensor

    @property
    def batch_size(self) -> int:
        return self.params.batch_size

    def select(self, index) -> GenericState:
        return GenericState(self.params.map(lambda t: t[index]), self.depth[index])


class AutogradFitter:
    """Fit any ``FaceModel`` with a ``LandmarkMap`` (see the module docstring). Same interface as
    ``LandmarkFitter``: ``fit``, ``track``, ``project``, ``to_params``, ``state_from_params``."""

    def __init__(self, model, lmap: LandmarkMap, options: FitOptions | None = None) -> None:
        self.model = model
        self.lmap = lmap
        self.options = options or FitOptions()
        self.weights = lmap.weights.float()
        self.n_shape = min(self.options.n_shape, model.n_shape)

    # ------------------------------------------------------------------ model
    def _landmarks(self, params: FaceParams) -> torch.Tensor:
        return self.lmap.embedding.positions(self.model(params), self.model.faces)

    def _predict(self, params: FaceParams, depth: torch.Tensor) -> torch.Tensor:
        proj = self.model.project(self._landmarks(params), params.camera)
        return proj + torch.stack([torch.zeros_like(depth), torch.zeros_like(depth), depth], -1)[:, None]

    def project(self, st: GenericState) -> torch.Tensor:
        with torch.no_grad():
            return self._predict(st.params, st.depth).double()

    def to_params(self, st: GenericState) -> FaceParams:
        return st.params.detach().clone()

    def state_from_params(self, params: FaceParams) -> GenericState:
        return GenericState(params.clone(), torch.zeros(params.batch_size))

    # ------------------------------------------------------------------ cost
    def _cost(self, params: FaceParams, depth: torch.Tensor, obs: torch.Tensor, s_ref: torch.Tensor) -> torch.Tensor:
        o = self.options
        r = (self._predict(params, depth) - obs) / s_ref[:, None, None]  # cm
        k = o.huber_cm
        e2 = r[..., :2].norm(dim=-1)
        ez = r[..., 2].abs()

        def huber(a: torch.Tensor) -> torch.Tensor:
            return torch.where(a <= k, 0.5 * a * a, k * (a - 0.5 * k))

        data = (self.weights * (huber(e2) + o.depth_weight * huber(ez))).sum() / o.sigma_cm**2
        prior = 0.5 * o.shape_prior * (params.shape**2).sum() + 0.5 * o.shape_prior * (params.expression**2).sum()
        prior = prior + 0.5 * ((params.gaze**2).sum() / o.gaze_prior_deg**2 + (params.jaw**2).sum() / 15.0**2)
        return data + prior

    def _optimise(
        self, st: GenericState, obs: torch.Tensor, iterations: int, fit_shape: bool, shared: bool
    ) -> GenericState:
        p = st.params.clone()
        shape = (p.shape[:1] if shared else p.shape)[:, : self.n_shape].clone().requires_grad_(fit_shape)
        free = {n: getattr(p, n).clone().requires_grad_(True) for n in ("expression", "head", "jaw", "gaze", "camera")}
        if not self.options.fit_gaze:
            free["gaze"].requires_grad_(False)
        depth = st.depth.clone().requires_grad_(True)
        s_ref = p.camera[:, 0].detach().clone()
        variables = [v for v in (*free.values(), depth) if v.requires_grad] + ([shape] if fit_shape else [])
        opt = torch.optim.LBFGS(variables, lr=1.0, max_iter=iterations, line_search_fn="strong_wolfe")

        def build() -> FaceParams:
            full = torch.zeros_like(p.shape)
            full = full.index_copy(1, torch.arange(self.n_shape), shape.expand(p.batch_size, -1))
            return FaceParams(full, free["expression"], free["head"], p.neck, free["jaw"], free["gaze"], free["camera"])

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = self._cost(build(), depth, obs, s_ref)
            loss.backward()
            return loss

        with torch.enable_grad():
            opt.step(closure)
        return GenericState(build().detach(), depth.detach())

    # ------------------------------------------------------------------ public
    def initial_state(self, obs: torch.Tensor, previous: GenericState | None = None) -> GenericState:
        """Closed-form pose: Umeyama of the current landmarks onto ``obs``, then scale and shift refitted
        for the model's own rotation centre."""
        obs = obs.float()
        b = obs.shape[0]
        base = (
            previous.params.map(lambda t: t[:1].expand(b, *t.shape[1:]).clone())
            if previous is not None
            else self.model.neutral(b)
        )
        base.head.zero_()
        with torch.no_grad():
            rest = self._landmarks(base)
            _, rot, _ = umeyama(
                rest.double(), (obs * obs.new_tensor([1.0, -1.0, -1.0])).double(), self.weights.double().expand(b, -1)
            )
            base.head = matrix_to_euler(rot).float()
            posed = self._landmarks(base)
        # weak perspective with the rotation fixed is linear in (s, tx, ty): x = s X + tx, y = -s Y + ty
        w = self.weights.expand(b, -1)
        px, py = posed[..., 0], -posed[..., 1]
        ox, oy = obs[..., 0], obs[..., 1]
        mx, my = (w * px).sum(1) / w.sum(1), (w * py).sum(1) / w.sum(1)
        mox, moy = (w * ox).sum(1) / w.sum(1), (w * oy).sum(1) / w.sum(1)
        num = (w * ((px - mx[:, None]) * (ox - mox[:, None]) + (py - my[:, None]) * (oy - moy[:, None]))).sum(1)
        den = (w * ((px - mx[:, None]) ** 2 + (py - my[:, None]) ** 2)).sum(1)
        s = num / den
        base.camera = torch.stack([s, mox - s * mx, moy - s * my], -1)
        depth = (obs[..., 2] + s[:, None] * posed[..., 2]).mean(1)
        return GenericState(base, depth)

    def fit(self, obs: torch.Tensor, shared_shape: bool = True, iterations: int | None = None) -> GenericState:
        with single_thread():
            st = self.initial_state(obs)
            st = self._optimise(st, obs.float(), 20, fit_shape=False, shared=shared_shape)
            return self._optimise(
                st,
                obs.float(),
                (iterations or self.options.iterations) * 10,
                fit_shape=self.n_shape > 0,
                shared=shared_shape,
            )

    def track(self, obs: torch.Tensor, previous: GenericState, iterations: int | None = None) -> GenericState:
        with single_thread():
            st = self.initial_state(obs, previous)
            st.params.expression = previous.params.expression[:1].clone()
            st.params.jaw = previous.params.jaw[:1].clone()
            st.params.gaze = previous.params.gaze[:1].clone()
            return self._optimise(
                st, obs.float(), (iterations or self.options.track_iterations) * 10, fit_shape=False, shared=False
            )
