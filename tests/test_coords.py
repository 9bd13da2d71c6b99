import torch
import torch.nn.functional as F

from core.coords import (
    flow_from_pixels,
    flow_to_pixels,
    norm_to_pixel,
    pixel_grid,
    pixel_to_norm,
    project_weak_perspective,
)


def test_pixel_centres_and_edges():
    uv = torch.tensor([[0.0, 0.0], [99.0, 49.0], [-0.5, -0.5], [99.5, 49.5]])
    xy = pixel_to_norm(uv, (50, 100))
    assert torch.allclose(xy[0], torch.tensor([-0.99, -0.98]))
    assert torch.allclose(xy[1], torch.tensor([0.99, 0.98]))
    assert torch.allclose(xy[2], torch.tensor([-1.0, -1.0])) and torch.allclose(xy[3], torch.tensor([1.0, 1.0]))
    assert torch.allclose(norm_to_pixel(xy, (50, 100)), uv, atol=1e-5)


def test_grid_is_grid_sample_identity():
    img = torch.rand(1, 3, 7, 11)
    grid = pixel_grid((7, 11))[None]
    assert grid.shape == (1, 7, 11, 2)
    out = F.grid_sample(img, grid, align_corners=False)
    assert torch.allclose(out, img, atol=1e-6)


def test_pixel_flow_shifts_image_by_that_many_pixels():
    img = torch.zeros(1, 1, 20, 30)
    img[0, 0, 10, 12] = 1.0
    flow_px = torch.zeros(1, 2, 20, 30)
    flow_px[:, 0] = 3.0  # read 3 px to the right ...
    flow_px[:, 1] = -2.0  # ... and 2 px up
    flow = flow_from_pixels(flow_px)
    assert torch.allclose(flow_to_pixels(flow), flow_px)
    grid = pixel_grid((20, 30))[None] + flow.permute(0, 2, 3, 1)
    out = F.grid_sample(img, grid, align_corners=False)
    assert abs(out[0, 0, 12, 9] - 1.0) < 1e-5 and abs(out.sum() - 1.0) < 1e-5


def test_projection_flips_y_and_depth():
    verts = torch.tensor([[[0.0, 10.0, 5.0], [2.0, 0.0, -5.0]]])
    cam = torch.tensor([[0.1, 0.2, -0.1]])
    p = project_weak_perspective(verts, cam)
    assert torch.allclose(p[0, 0], torch.tensor([0.2, -1.1, -0.5]))  # up in 3D is up (negative y) in the image
    assert torch.allclose(p[0, 1], torch.tensor([0.4, -0.1, 0.5]))  # further from the camera: larger depth
