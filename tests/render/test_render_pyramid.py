"""Gaussian anti-aliasing pyramid (spec section 5.5)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from core.render import gaussian_downsample, gaussian_kernel1d, guidance_pyramid


@pytest.mark.parametrize("stride,size", [(2, 5), (4, 13), (8, 29), (16, 61), (32, 125)])
def test_kernel_sizes(stride, size):
    k = gaussian_kernel1d(stride)
    assert k.numel() == size
    assert torch.isclose(k.sum(), torch.tensor(1.0))
    assert torch.allclose(k, k.flip(0))
    assert int(k.argmax()) == size // 2


def test_identity_and_sizes():
    x = torch.randn(2, 3, 256, 256)
    pyr = guidance_pyramid(x)
    assert list(pyr) == [1, 2, 4, 8, 16, 32]
    assert pyr[1] is x
    for s, y in pyr.items():
        assert y.shape == (2, 3, 256 // s, 256 // s)


@pytest.mark.parametrize("stride", [2, 4, 8, 16, 32])
def test_constant_field_stays_constant_inside(stride):
    x = torch.full((1, 2, 256, 256), 0.7)
    y = gaussian_downsample(x, stride)
    half = gaussian_kernel1d(stride).numel() // 2
    # Output pixel i samples input i * s; it is free of the zero padding when half <= i * s <= 255 - half.
    lo = -(-half // stride)
    hi = (255 - half) // stride
    inner = y[..., lo : hi + 1, lo : hi + 1]
    assert inner.numel() > 0
    assert torch.allclose(inner, torch.tensor(0.7), atol=1e-5)
    assert y[..., 0, 0].max() < 0.7  # the border does see the zero padding


def test_matches_2d_convolution_and_sampling_phase():
    torch.manual_seed(0)
    x = torch.randn(1, 1, 64, 64, dtype=torch.float64)
    s = 4
    k = gaussian_kernel1d(s, dtype=torch.float64)
    full = F.conv2d(x, (k[:, None] * k[None, :])[None, None], padding=k.numel() // 2)
    assert torch.allclose(gaussian_downsample(x, s), full[..., ::s, ::s])


def test_channels_last_input_and_batch_channels_independent():
    torch.manual_seed(1)
    x = torch.randn(2, 3, 32, 32)
    y = gaussian_downsample(x.to(memory_format=torch.channels_last), 2)
    assert torch.allclose(y, gaussian_downsample(x, 2), atol=1e-6)
    assert torch.allclose(gaussian_downsample(x[1:, 2:], 2), y[1:, 2:], atol=1e-6)


def test_flow_units_unchanged():
    """A uniform normalised flow keeps its value at every level (no rescaling) away from the borders."""
    flow = torch.zeros(1, 2, 128, 128)
    flow[:, 0] = 0.25
    flow[:, 1] = -0.1
    y = gaussian_downsample(flow, 8)
    assert torch.allclose(y[..., 6:10, 6:10], torch.tensor([0.25, -0.1]).view(1, 2, 1, 1), atol=1e-6)
