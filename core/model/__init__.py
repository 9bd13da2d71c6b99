"""The learned PWM model (design doc ``gdpw-model.md`` sections 6 to 8): generator, discriminator, losses."""

from core.model.blocks import fold_spectral_norm, has_spectral_norm
from core.model.discriminator import Discriminator, DiscriminatorConfig
from core.model.generator import (
    PRESETS,
    VARIANTS,
    Generator,
    GeneratorConfig,
    GeometryInput,
    check_alpha_scale,
    count_parameters,
    warp,
)
from core.model.losses import VGG19, GeneratorLoss, LossConfig, PerceptualLoss, gan_d_loss, gan_g_loss

__all__ = [
    "Generator",
    "GeneratorConfig",
    "GeometryInput",
    "check_alpha_scale",
    "PRESETS",
    "VARIANTS",
    "Discriminator",
    "DiscriminatorConfig",
    "GeneratorLoss",
    "LossConfig",
    "PerceptualLoss",
    "VGG19",
    "gan_d_loss",
    "gan_g_loss",
    "warp",
    "count_parameters",
    "fold_spectral_norm",
    "has_spectral_norm",
]
