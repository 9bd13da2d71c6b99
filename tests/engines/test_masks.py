import torch
import torch.nn.functional as F

from core.engines.fill import harmonic_fill
from core.engines.masks import box_blur, dilate, erode


def test_dilate_equals_a_max_filter_and_erode_is_its_dual():
    torch.manual_seed(0)
    mask = (torch.rand(2, 1, 70, 90) > 0.995).float()
    for r in (1, 5, 23):
        k = 2 * r + 1
        ref = F.max_pool2d(F.max_pool2d(mask, (1, k), 1, (0, r)), (k, 1), 1, (r, 0))
        assert torch.equal(dilate(mask, r), ref)
    full = torch.ones(1, 1, 20, 20)
    full[..., 10, 10] = 0.0
    eroded = erode(full, 2)
    assert eroded[..., 8:13, 8:13].max() == 0 and eroded.sum() == 400 - 25  # the border counts as inside


def test_box_blur_keeps_constants_and_averages():
    x = torch.full((1, 3, 16, 16), 0.7)
    assert torch.allclose(box_blur(x, 3), x)
    y = torch.zeros(1, 1, 9, 9)
    y[..., 4, 4] = 9.0
    assert torch.isclose(box_blur(y, 1)[0, 0, 4, 4], torch.tensor(1.0))


def test_windowed_fill_matches_the_whole_image_solve():
    torch.manual_seed(1)
    values = torch.rand(1, 2, 96, 96)
    known = torch.ones(1, 1, 96, 96)
    known[..., 40:52, 30:60] = 0.0
    windowed = harmonic_fill(values, known, sweeps=200)
    whole = harmonic_fill(values, known, sweeps=200, pad=96)
    assert torch.equal(windowed[..., known[0, 0] > 0], values[..., known[0, 0] > 0])
    assert (windowed - whole).abs().max() < 1e-3
    # ``within`` solves only around its own pixels: another hole elsewhere keeps its values
    known[..., 5:10, 80:90] = 0.0
    part = harmonic_fill(values, known, sweeps=50, within=(1.0 - known) * (torch.arange(96) < 70).float())
    assert torch.equal(part[..., 5:10, 80:90], values[..., 5:10, 80:90])
