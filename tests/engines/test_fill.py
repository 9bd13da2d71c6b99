import torch

from core.engines.fill import harmonic_fill


def test_known_pixels_are_kept_and_holes_interpolated_linearly():
    values = torch.zeros(1, 1, 64, 64)
    known = torch.zeros(1, 1, 64, 64)
    values[..., -1] = 1.0
    known[..., 0] = 1.0
    known[..., -1] = 1.0
    out = harmonic_fill(values, known, sweeps=200)
    assert torch.equal(out[..., 0], values[..., 0]) and torch.equal(out[..., -1], values[..., -1])
    # between two fixed columns the harmonic solution is the straight line
    expected = torch.linspace(0, 1, 64)
    assert (out[0, 0, 32] - expected).abs().max() < 0.02


def test_fill_is_smooth_and_bounded_with_default_sweeps():
    values = torch.zeros(2, 2, 128, 128)
    known = torch.zeros(2, 1, 128, 128)
    values[:, :, 50:70, 50:70] = torch.tensor([0.3, -0.2]).view(1, 2, 1, 1)
    known[:, :, 50:70, 50:70] = 1
    known[:, :, :4] = 1  # a zero band at the top
    out = harmonic_fill(values, known)
    assert out.shape == values.shape
    assert (out[:, 0] <= 0.3 + 1e-6).all() and (out[:, 0] >= -1e-6).all()  # maximum principle
    row = out[0, 0, 60, 70:]
    assert (row[1:] <= row[:-1] + 1e-4).all()  # decays monotonically away from the known block


def test_nothing_known_gives_zero():
    out = harmonic_fill(torch.rand(1, 3, 16, 16), torch.zeros(1, 1, 16, 16))
    assert torch.equal(out, torch.zeros_like(out))
