"""Losses: VGG-19 definition and weight loading, the fallback, GAN formulas, the full generator objective."""

from __future__ import annotations

import logging

import pytest
import torch

from core.model import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, GeneratorLoss, LossConfig
from core.model.losses import VGG19, PerceptualLoss, feature_matching, gan_d_loss, gan_g_loss, load_vgg19_weights

TORCHVISION_CONV_IDS = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28]  # up to relu5_1


def test_vgg19_uses_torchvision_names_and_loads_safetensors(tmp_path):
    from safetensors.torch import save_file

    ref = VGG19().random_init(3)
    keys = [k for k in ref.state_dict()]
    assert keys == [f"features.{i}.{p}" for i in TORCHVISION_CONV_IDS for p in ("weight", "bias")]
    # a torchvision-like file also holding later layers and the classifier
    state = dict(ref.state_dict())
    state.update({"features.30.weight": torch.zeros(512, 512, 3, 3), "classifier.0.weight": torch.zeros(4, 4)})
    save_file(state, str(tmp_path / "vgg19.safetensors"))
    vgg = load_vgg19_weights(VGG19(), tmp_path / "vgg19.safetensors")
    x = torch.rand(1, 3, 32, 32)
    assert all(torch.equal(a, b) for a, b in zip(vgg(x), ref(x)))
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="not a VGG-19"):
        load_vgg19_weights(VGG19(), tmp_path / "bad.pth")


def test_missing_vgg_weights_fall_back_with_a_message(caplog, monkeypatch):
    monkeypatch.delenv("GDPW_VGG19", raising=False)
    with caplog.at_level(logging.WARNING):
        p = PerceptualLoss(LossConfig(perceptual="vgg", vgg_weights="/nonexistent/vgg19.pth"))
    assert "VGG-19 weights not found" in caplog.text and "/nonexistent/vgg19.pth" in caplog.text
    assert p.kind == "vgg_random" and p.vgg is not None
    x = torch.rand(1, 3, 64, 64)
    assert float(p(x, x, 4)) == 0.0 and float(p(x, torch.rand_like(x), 4)) > 0
    p2 = PerceptualLoss(LossConfig(perceptual="vgg", perceptual_fallback="l1_pyramid"))
    assert p2.kind == "l1_pyramid" and p2.vgg is None


def test_random_vgg_keeps_activation_scale():
    feats = VGG19().random_init(0)(torch.rand(1, 3, 64, 64))
    scales = [float(f.abs().mean()) for f in feats]
    assert all(1e-3 < s < 1e3 for s in scales), scales


def test_gan_formulas():
    real, fake = torch.full((1, 1, 2, 2), 0.5), torch.full((1, 1, 2, 2), -0.5)
    assert gan_g_loss(fake, "ls") == pytest.approx(2.25)
    assert gan_g_loss(fake, "hinge") == pytest.approx(0.5)
    assert gan_d_loss(real, fake, "ls") == pytest.approx(0.25 + 0.25)
    assert gan_d_loss(real, fake, "hinge") == pytest.approx(0.5 + 0.5)
    a = [torch.ones(1, 2, 2, 2)]
    assert feature_matching(a, [torch.zeros(1, 2, 2, 2)]) == pytest.approx(1.0)


@pytest.mark.parametrize("gan", ["ls", "hinge"])
def test_generator_objective_terms(ict_model, gan):
    m = ict_model
    p = m.neutral(2)
    p.camera[:] = torch.tensor([1.2 / 14.7, 0.0, 0.12])
    p.head[1, 0] = 15.0
    with torch.no_grad():
        v = m.project(m(p), p.camera)
    g = Generator(GeneratorConfig.from_preset("tiny", "both"), m.render_faces)
    d = Discriminator(DiscriminatorConfig(base=8))
    loss = GeneratorLoss(LossConfig(gan=gan, perceptual="l1_pyramid", w_flow=10.0))
    x = torch.rand(1, 3, 64, 64)
    out = g(x, v[:1], v[1:])
    total, terms = loss(out, x, torch.rand(1, 3, 64, 64), d)
    assert set(terms) == {"pix", "vgg", "warp", "flow", "gan", "fm", "gan_warp", "fm_warp"}
    assert torch.isfinite(total)
    total.backward()
    assert all(p.grad is not None for p in g.parameters())


def test_ssim_term():
    from core.model.losses import GeneratorLoss, LossConfig, ssim

    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-5)
    noisy = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    assert float(ssim(x, noisy)) < 0.9 and float(ssim(x, noisy)) > float(ssim(x, torch.rand_like(x)))
    cfg = LossConfig(gan="none", perceptual="l1_pyramid", w_warp=0, w_ssim=2.0, vgg_scales=2)
    y_hat = noisy.clone().requires_grad_(True)
    total, terms = GeneratorLoss(cfg)({"y_hat": y_hat, "flows": {}}, x, x)
    assert "ssim" in terms and float(terms["ssim"]) > 0
    total.backward()
    assert y_hat.grad.abs().sum() > 0
