import numpy as np
import torch

from core.composite import crop_footprint, paste_back, warp_original


def _crop_transform(scale=0.5, x0=300.0, y0=200.0):
    """crop <- original: the original square [x0, x0 + 256/scale) maps onto the 256 crop."""
    return np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale], [0, 0, 1.0]])


def test_footprint_is_the_crop_square_in_the_original():
    box = crop_footprint(_crop_transform(), 256, (1000, 1200), margin=0)
    assert box[0] <= 300 and box[1] <= 200 and box[2] >= 812 and box[3] >= 712
    assert box[2] - box[0] < 520


def test_zero_flow_keeps_the_photo_and_constant_flow_shifts_it():
    rng = np.random.default_rng(0)
    photo = (rng.random((1000, 1200, 3)) * 255).astype(np.uint8)
    photo = np.ascontiguousarray(np.repeat(np.repeat(photo[::8, ::8], 8, 0), 8, 1)[:1000, :1200])
    crop_t = _crop_transform()
    same = warp_original(photo, torch.zeros(1, 2, 256, 256), crop_t)
    assert np.array_equal(same, photo)
    flow = torch.zeros(1, 2, 256, 256)
    flow[:, 0] = 10.0 * 2 / 256  # read 10 crop pixels to the right = 20 original pixels
    shifted = warp_original(photo, flow, crop_t)
    inner = (slice(400, 600), slice(450, 650))
    expected = photo[400:600, 470:670]
    assert np.abs(shifted[inner].astype(int) - expected.astype(int)).max() <= 1
    assert np.array_equal(shifted[:150], photo[:150])  # outside the crop: untouched


def test_paste_back_blends_inside_and_leaves_outside():
    photo = np.zeros((1000, 1200, 3), np.uint8)
    crop = np.zeros((256, 256, 3), np.uint8)
    crop[..., 0] = 255
    out = paste_back(photo, crop, _crop_transform())
    assert out[456, 556, 0] == 255 and out[456, 556, 1] == 0  # the centre of the crop
    assert out[100, 100].tolist() == [0, 0, 0] and out[950, 1150].tolist() == [0, 0, 0]
    mask = np.zeros((256, 256), np.float32)
    mask[100:150, 100:150] = 1
    part = paste_back(photo, crop, _crop_transform(), mask=mask)
    assert part[200 + 250, 300 + 250, 0] > 200 and part[200 + 50, 300 + 50, 0] == 0
