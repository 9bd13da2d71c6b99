"""Losses (design doc ``gdpw-model.md`` section 8): pixel L1, multi-scale VGG-19 perceptual, PatchGAN (LS or
hinge), discriminator feature matching, and the auxiliary losses on the source warped by every predicted flow.

**VGG-19 weights.** torchvision is not usable here, so ``VGG19`` is our own module with torchvision's layer
indexing (``features.0`` ... ``features.34``): an ImageNet ``vgg19`` state dict (``.pth`` from torchvision or a
``.safetensors`` conversion of it) loads directly. The path comes from ``LossConfig.vgg_weights`` or the
``GDPW_VGG19`` environment variable. Without weights the perceptual loss falls back, with a logged warning, to
``LossConfig.perceptual_fallback``:

- ``"vgg_random"`` (default): the same multi-scale VGG-19 loss on a *randomly initialised, frozen* VGG-19
  (seed 0, He-normal init so activations keep their scale through the 16 layers). Random deep features still
  measure local structure at several receptive-field sizes; it is a usable stand-in for experiments, not a
  replacement for ImageNet features when training a real model.
- ``"l1_pyramid"``: a cheap multi-scale L1 + image-gradient L1 on the same Gaussian pyramid (used by the tiny
  CPU test configs).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core.render import gaussian_downsample

__all__ = [
    "LossConfig",
    "VGG19",
    "load_vgg19_weights",
    "PerceptualLoss",
    "gan_g_loss",
    "gan_d_loss",
    "feature_matching",
    "ssim",
    "GeneratorLoss",
    "VGG_ENV",
]

log = logging.getLogger(__name__)
VGG_ENV = "GDPW_VGG19"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# torchvision's vgg19 "E" configuration; 'M' = max-pool
_VGG19_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
# relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 = outputs of features[:2], [2:7], [7:12], [12:21], [21:30]
_VGG_SLICES = (2, 7, 12, 21, 30)


@dataclass
class LossConfig:
    """Loss weights and choices (spec 8.1): ``gan`` is ``"ls"`` (official default), ``"hinge"`` (paper) or
    ``"none"``. ``perceptual``: ``"vgg"`` (ImageNet weights, with fallback), ``"vgg_random"`` or
    ``"l1_pyramid"``. ``w_flow`` > 0 enables the official code's disabled multi-scale flow consistency term;
    ``w_ssim`` > 0 adds ``1 - SSIM`` (8x8-window box SSIM) at each of ``vgg_scales`` pyramid levels, a cheap
    structural term for CPU training without VGG weights."""

    gan: str = "ls"
    w_pix: float = 10.0
    w_vgg: float = 10.0
    w_fm: float = 10.0
    w_gan: float = 1.0
    w_warp: float = 10.0
    warp_adversarial: bool = True
    w_flow: float = 0.0
    w_ssim: float = 0.0
    vgg_scales: int = 4
    perceptual: str = "vgg"
    vgg_weights: str = ""
    perceptual_fallback: str = "vgg_random"

    def __post_init__(self) -> None:
        if self.gan not in ("ls", "hinge", "none"):
            raise ValueError(f"gan must be 'ls', 'hinge' or 'none', got '{self.gan}'")
        if self.perceptual not in ("vgg", "vgg_random", "l1_pyramid"):
            raise ValueError(f"perceptual must be 'vgg', 'vgg_random' or 'l1_pyramid', got '{self.perceptual}'")
        if self.perceptual_fallback not in ("vgg_random", "l1_pyramid"):
            raise ValueError("perceptual_fallback must be 'vgg_random' or 'l1_pyramid'")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------------------ VGG-19
class VGG19(nn.Module):
    """VGG-19 convolutional trunk with torchvision's module indices; returns relu1_1 ... relu5_1 of an input in
    [0, 1] (ImageNet normalisation inside). Frozen, always in eval mode."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in _VGG19_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=False)]
                cin = v
        self.features = nn.Sequential(*layers[: _VGG_SLICES[-1]])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG19:
        return super().train(False)

    def random_init(self, seed: int = 0) -> VGG19:
        g = torch.Generator().manual_seed(seed)
        for m in self.features:
            if isinstance(m, nn.Conv2d):
                fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1]
                with torch.no_grad():
                    m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_out) ** 0.5)
                    m.bias.zero_()
        return self

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        out, start = [], 0
        for stop in _VGG_SLICES:
            for i in range(start, stop):
                h = self.features[i](h)
            out.append(h)
            start = stop
        return out


def load_vgg19_weights(vgg: VGG19, path: str | Path) -> VGG19:
    """Load an ImageNet VGG-19 state dict (torchvision key names; ``.safetensors`` or a ``.pth``/``.pt`` read
    with ``weights_only=True``). Classifier keys are ignored; every ``features.*`` conv must be present."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
    state = {k[len("module.") :] if k.startswith("module.") else k: v for k, v in state.items()}
    feats = {k: v for k, v in state.items() if k.startswith("features.")}
    own = vgg.state_dict()
    missing = [k for k in own if k not in feats]
    if missing:
        raise ValueError(f"{path} is not a VGG-19 state dict (torchvision names): missing {missing[:4]}...")
    bad = [k for k in own if tuple(feats[k].shape) != tuple(own[k].shape)]
    if bad:
        raise ValueError(f"{path}: shape mismatch for {bad[:4]} (is it VGG-19, not VGG-16?)")
    vgg.load_state_dict({k: feats[k] for k in own})
    return vgg


# ------------------------------------------------------------------------------------------ perceptual
def _image_pyramid(x: torch.Tensor, scales: int) -> list[torch.Tensor]:
    return [gaussian_downsample(x, 2**p) for p in range(scales)]


def _grad_l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    dx = lambda t: t[..., :, 1:] - t[..., :, :-1]  # noqa: E731
    dy = lambda t: t[..., 1:, :] - t[..., :-1, :]  # noqa: E731
    return (dx(x) - dx(y)).abs().mean() + (dy(x) - dy(y)).abs().mean()


class PerceptualLoss(nn.Module):
    """Multi-scale perceptual distance ``sum_p sum_l meanL1(phi_l(x_p), phi_l(y_p))`` (spec 8.2), unweighted
    (the caller applies ``w_vgg``). ``kind`` is the resolved kind: ``vgg``, ``vgg_random`` or ``l1_pyramid``.
    The target is detached. Inputs smaller than 16 px (where relu5_1 would vanish) use pixel L1 instead."""

    def __init__(self, config: LossConfig) -> None:
        super().__init__()
        kind = config.perceptual
        self.source = kind
        self.vgg = None
        if kind == "vgg":
            path = config.vgg_weights or os.environ.get(VGG_ENV, "")
            if path and Path(path).is_file():
                self.vgg = load_vgg19_weights(VGG19(), path)
                self.source = f"vgg19 ImageNet weights from {path}"
            else:
                where = f"'{path}' does not exist" if path else f"no path set (LossConfig.vgg_weights or ${VGG_ENV})"
                kind = config.perceptual_fallback
                log.warning(
                    "ImageNet VGG-19 weights not found: %s. The perceptual loss falls back to '%s' "
                    "(see core.model.losses); set loss.vgg_weights to a torchvision vgg19 state dict "
                    "(.pth or .safetensors) for the paper's loss.",
                    where,
                    kind,
                )
        if kind == "vgg_random":
            self.vgg = VGG19().random_init(0)
            self.source = "randomly initialised frozen VGG-19 (seed 0)"
        elif kind == "l1_pyramid":
            self.source = "multi-scale L1 + gradient L1"
        self.kind = kind if self.vgg is None or kind != "vgg" else "vgg"

    def single(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One scale: VGG feature L1 (5 layers), or L1 + gradient L1."""
        y = y.detach()
        if self.vgg is None or min(x.shape[-2:]) < 16:
            return (x - y).abs().mean() + (_grad_l1(x, y) if self.vgg is None else 0.0)
        n = x.shape[0]
        feats = self.vgg(torch.cat([x, y.to(x.dtype)], 0))  # one pass for both
        return sum((fx[:n] - fx[n:].detach()).abs().float().mean() for fx in feats)

    def forward(self, x: torch.Tensor, y: torch.Tensor, scales: int = 1) -> torch.Tensor:
        xs, ys = _image_pyramid(x, scales), _image_pyramid(y.detach(), scales)
        return sum(self.single(a, b) for a, b in zip(xs, ys))


# ------------------------------------------------------------------------------------------ GAN
def gan_g_loss(logits: torch.Tensor, kind: str) -> torch.Tensor:
    """Generator adversarial term: LS ``mean((1 - D(fake))^2)``, hinge ``-mean(D(fake))``."""
    logits = logits.float()
    if kind == "ls":
        return ((1.0 - logits) ** 2).mean()
    if kind == "hinge":
        return -logits.mean()
    return logits.new_zeros(())


def gan_d_loss(real: torch.Tensor, fake: torch.Tensor, kind: str) -> torch.Tensor:
    """Discriminator term: LS ``mean((1 - D(real))^2) + mean(D(fake)^2)``; hinge
    ``mean(relu(1 - D(real))) + mean(relu(1 + D(fake)))``."""
    real, fake = real.float(), fake.float()
    if kind == "ls":
        return ((1.0 - real) ** 2).mean() + (fake**2).mean()
    if kind == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    return real.new_zeros(())


def feature_matching(real_feats: list[torch.Tensor], fake_feats: list[torch.Tensor]) -> torch.Tensor:
    """``sum_k meanL1(D_k(real), D_k(fake))`` with the real features detached."""
    return sum((f.float() - r.detach().float()).abs().mean() for r, f in zip(real_feats, fake_feats))


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 8) -> torch.Tensor:
    """Mean structural similarity of images ``(B, C, H, W)`` in [0, 1] with ``window x window`` box windows
    (stride 1, no padding; the window shrinks to fit images smaller than it). 1 for identical images."""
    k = max(2, min(window, *x.shape[-2:]))
    x, y = x.float(), y.float()
    mx, my = F.avg_pool2d(x, k, 1), F.avg_pool2d(y, k, 1)
    vx = F.avg_pool2d(x * x, k, 1) - mx * mx
    vy = F.avg_pool2d(y * y, k, 1) - my * my
    cxy = F.avg_pool2d(x * y, k, 1) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2))).mean()


def area_down(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return x if tuple(x.shape[-2:]) == tuple(size) else F.interpolate(x, size=size, mode="area")


class GeneratorLoss(nn.Module):
    """The generator objective of spec 8.3. ``forward(out, x_s, y, disc)`` returns ``(total, terms)`` where
    ``terms`` holds the detached weighted terms for logging. ``disc`` is a callable ``x -> (features, logits)``
    (the discriminator, called without gradient bookkeeping for its own parameters by the trainer)."""

    def __init__(self, config: LossConfig) -> None:
        super().__init__()
        self.config = config
        self.perceptual = PerceptualLoss(config)

    def forward(
        self,
        out: dict[str, Any],
        x_s: torch.Tensor,
        y: torch.Tensor,
        disc: Callable[[torch.Tensor], tuple[list[torch.Tensor], torch.Tensor]] | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        from core.model.generator import warp

        cfg = self.config
        y_hat = out["y_hat"]
        terms: dict[str, torch.Tensor] = {}
        terms["pix"] = cfg.w_pix * (y_hat.float() - y.float()).abs().mean()
        if cfg.w_vgg:
            terms["vgg"] = cfg.w_vgg * self.perceptual(y_hat, y, cfg.vgg_scales)
        if cfg.w_ssim:
            pyr_x, pyr_y = _image_pyramid(y_hat, cfg.vgg_scales), _image_pyramid(y.detach(), cfg.vgg_scales)
            terms["ssim"] = cfg.w_ssim * sum(1.0 - ssim(a, b) for a, b in zip(pyr_x, pyr_y))
        if cfg.w_warp:
            warp_terms = []
            for _, f in sorted(out["flows"].items()):
                size = tuple(f.shape[-2:])
                w = warp(area_down(x_s, size), f)
                warp_terms.append(self.perceptual.single(w, area_down(y, size)))
            terms["warp"] = cfg.w_warp * sum(warp_terms)
        if cfg.w_flow:
            f1 = out["flows"][1]
            terms["flow"] = cfg.w_flow * sum(
                F.mse_loss(f, area_down(f1, tuple(f.shape[-2:]))) for s, f in out["flows"].items() if s != 1
            )
        if cfg.gan != "none" and disc is not None:
            real_feats, _ = disc(y)
            fakes = [("", y_hat)] + ([("_warp", out["warped_src"])] if cfg.warp_adversarial else [])
            for tag, fake in fakes:
                feats, logits = disc(fake)
                terms["gan" + tag] = cfg.w_gan * gan_g_loss(logits, cfg.gan)
                terms["fm" + tag] = cfg.w_fm * feature_matching(real_feats, feats)
        total = sum(terms.values())
        return total, {k: v.detach() for k, v in terms.items()}
