"""Single-scale PatchGAN discriminator (design doc ``gdpw-model.md`` section 7).

Unconditional (RGB only). ``layers`` DownBlocks with kernel 4, padding 2 (SN conv with bias, BatchNorm(affine),
LReLU(0.1), AvgPool(2)); channels 3 -> base -> 2 base -> ... (capped at ``ch_max``); then a plain 4x4 conv
(no SN, spec 12.3) to one logit per patch. At 256 px: features 32@128, 64@64, 128@32, 256@16 and a 17x17
logit map; 695 201 parameters with the defaults. Real and fake batches are passed in separate calls so each
gets its own BatchNorm statistics, as in the original.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from core.model.blocks import DownBlock, conv

__all__ = ["DiscriminatorConfig", "Discriminator"]


@dataclass
class DiscriminatorConfig:
    base: int = 32
    layers: int = 4
    ch_max: int = 512

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Discriminator(nn.Module):
    """``D(x) -> (features, logits)``: ``features`` is the list of the DownBlock outputs (for feature matching),
    ``logits (B, 1, h, w)`` the patch map."""

    def __init__(self, config: DiscriminatorConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or DiscriminatorConfig()
        chans = [3] + [min(cfg.ch_max, cfg.base * 2**i) for i in range(cfg.layers)]
        self.blocks = nn.ModuleList(DownBlock(a, b, k=4, padding=2) for a, b in zip(chans[:-1], chans[1:]))
        self.logits = conv(chans[-1], 1, k=4, padding=2, sn=False)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        feats = []
        h = x
        for block in self.blocks:
            h = block(h)
            feats.append(h)
        return feats, self.logits(h)
