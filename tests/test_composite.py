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


def test_photo_around_crop_has_the_crop_in_its_middle_and_knows_the_photo_edge():
    from core.fit.crop import photo_around_crop, warp_image

    rng = np.random.default_rng(1)
    photo = (rng.random((300, 400, 3)) * 255).astype(np.uint8)
    crop_t = _crop_transform(scale=0.5, x0=60.0, y0=-40.0)  # the crop's top runs 40 px past the photo
    crop = warp_image(photo, crop_t, 128)
    around, inside = photo_around_crop(photo, crop_t, 128, 32)
    assert around.shape == (192, 192, 3) and inside.shape == (192, 192)
    assert np.array_equal(around[32:160, 32:160], crop)
    # pixel (u, v) of the grown square is photo pixel (2 u - 4, 2 v - 104): inside from u = 2 and v = 52 on
    assert inside[:52].max() == 0 and inside[:, :2].max() == 0 and inside[52:, 2:].min() == 1


def test_crop_view_takes_what_the_flow_brings_from_beyond_the_crop_from_the_photo():
    from core.composite import fill_beyond_crop
    from core.fit.crop import photo_around_crop, warp_image

    rng = np.random.default_rng(2)
    photo = (rng.random((400, 400, 3)) * 255).astype(np.uint8)
    photo = np.ascontiguousarray(np.repeat(np.repeat(photo[::4, ::4], 4, 0), 4, 1))
    crop_t = _crop_transform(scale=1.0, x0=100.0, y0=20.0)  # crop rows 0..127 = photo rows 20..147
    crop = warp_image(photo, crop_t, 128)
    around, inside = photo_around_crop(photo, crop_t, 128, 32)
    engine_out = np.full_like(crop, 7)  # what an engine drew: a flat fill
    flow = torch.zeros(2, 128, 128)
    flow[1, :16] = -10.0 * 2 / 128  # the top 16 rows read 10 px higher: rows 0-9 from beyond the crop
    out = fill_beyond_crop(engine_out, flow, None, around, inside)
    # rows 0-9 show the photo 10 px higher (photo rows 10..19): what full resolution shows there
    assert np.abs(out[:10].astype(int) - photo[10:20, 100:228].astype(int)).max() <= 1
    # the rest is the engine's, but for the 2-pixel rim, which is the crop moved the same way
    assert np.array_equal(out[12:], engine_out[12:])
    assert np.abs(out[10:12].astype(int) - photo[20:22, 100:228].astype(int)).max() <= 1
    # made-up pixels stay the engine's, and its fill fades into the photo over a few pixels around them
    keep = np.zeros((128, 128), np.float32)
    keep[:3, :64] = 1.0
    kept = fill_beyond_crop(engine_out, flow, keep, around, inside)
    assert np.array_equal(kept[:3, :64], engine_out[:3, :64])
    off = np.abs(kept[:10, 10:50].astype(int) - photo[10:20, 110:150].astype(int)).mean(-1).mean(-1)
    assert np.all(np.diff(off[3:]) < 0) and off[3] > 50 and off[9] == 0  # rows 3-8 fade, row 9 is the photo
    assert np.abs(kept[:10, 80:].astype(int) - photo[10:20, 180:228].astype(int)).max() <= 1  # far from them
    # beyond the photo's edge there is nothing to take: the engine's fill stays
    flow[1, :16] = -30.0 * 2 / 128  # rows 0-9 read photo rows -10..-1
    out = fill_beyond_crop(engine_out, flow, None, around, inside)
    assert np.array_equal(out[:9], engine_out[:9])
    # no flow beyond the crop: the engine's image itself
    assert fill_beyond_crop(engine_out, torch.zeros(2, 128, 128), None, around, inside) is engine_out


def test_what_the_flow_reads_beyond_the_photo_is_pasted_from_the_crop():
    """At full resolution a flow that reads past the photo's edge would draw the edge repeated (streaks): those
    pixels are flagged (``reads_beyond_photo``) and pasted from the crop, as the crop view shows them."""
    from core.composite import compose_result, reads_beyond_photo
    from core.engines.base import EngineResult
    from core.fit.crop import photo_around_crop

    rng = np.random.default_rng(5)
    photo = (rng.random((300, 300, 3)) * 255).astype(np.uint8)
    crop_t = _crop_transform(scale=1.0, x0=50.0, y0=10.0)  # crop rows 0..127 = photo rows 10..137
    _, inside = photo_around_crop(photo, crop_t, 128, 32)
    flow = torch.zeros(2, 128, 128)
    flow[1, :30] = -20.0 * 2 / 128  # the top 30 rows read 20 px higher: rows 0-9 above the photo
    beyond = reads_beyond_photo(flow, inside)
    assert beyond[:9].min() > 0.99 and beyond[11:].max() == 0
    assert reads_beyond_photo(torch.zeros(2, 128, 128), inside).max() == 0
    crop_image = np.full((128, 128, 3), 90, np.uint8)  # what the engine drew
    result = EngineResult(crop_image[None], flow[None], np.zeros((1, 128, 128), np.float32))
    plain = compose_result(photo, result, 0, crop_t)
    pasted = compose_result(photo, result, 0, crop_t, inside=inside)
    # photo rows 13..17 (crop rows 3-7, away from the feathered edges of the pasted band) come from the crop,
    # not from the photo's top row repeated
    assert np.abs(pasted[13:18, 60:170].astype(int) - 90).max() <= 1
    assert np.abs(plain[13:18, 60:170].astype(int) - photo[0, 60:170].astype(int)).max() <= 1
    assert np.array_equal(pasted[30:], plain[30:])  # elsewhere as before


def _two_surface_case():
    """A photo lit grey (200) left of x = 604, black on [604, 672), mid grey (120) from 672 on, and a crop
    flow that reads in place on the crop's left half and 20 crop pixels (80 photo pixels) further right on
    its right half: the black strip is what the jump hides (the crease beside a nose that a turn hides)."""
    photo = np.full((1200, 1200, 3), 200, np.uint8)
    photo[:, 604:672] = 0
    photo[:, 672:] = 120
    crop_t = _crop_transform(scale=0.25, x0=88.0, y0=88.0)  # crop pixel u is photo x = 88 + 4 u + 1.5
    flow = torch.zeros(1, 2, 256, 256)
    flow[:, 0, :, 128:] = 20.0 * 2 / 256
    return photo, crop_t, flow


def test_full_resolution_does_not_read_what_an_occluding_contour_hides():
    from core.composite import _original_pixels_in_crop

    photo, crop_t, flow = _two_surface_case()
    rows = slice(400, 800)
    # the trap is real: the flow upsampled bilinearly reads the hidden black strip next to the contour
    uv = torch.from_numpy(_original_pixels_in_crop(crop_t, (560, 400, 640, 401))).float()
    read_x = (
        uv[0, :, 0]
        + torch.nn.functional.grid_sample(flow, ((uv + 0.5) * (2 / 256) - 1)[None], align_corners=False)[0, 0, 0] * 128
    )
    assert ((read_x > 129) & (read_x < 146)).any()  # crop columns of photo x 604-672
    out = warp_original(photo, flow, crop_t)
    band = out[rows, 560:640].astype(int)
    assert band.min() >= 119  # only the two surfaces' greys, never the black between them
    assert (band[..., 0] == 200).any() and (band[..., 0] == 120).any()
    # and the contour is sharp: at most two photo pixels per row between the two greys
    between = ((band[..., 0] > 121) & (band[..., 0] < 199)).sum(1)
    assert between.max() <= 2


def test_occluding_edges_only_where_the_flow_jumps():
    from core.composite import FLOW_JUMP_PX, _original_pixels_in_crop, occluding_edges

    photo, crop_t, flow = _two_surface_case()
    uv = torch.from_numpy(_original_pixels_in_crop(crop_t, (400, 400, 800, 800))).float()
    flow_px = flow[0].permute(1, 2, 0) * 128
    where, near, far, alpha = occluding_edges(flow_px, uv, points_per_px=4.0)
    # the points between crop columns 127 and 128 (photo x 597-601), on both sides the two surfaces' flows
    xs = where[1] + 400
    assert xs.min() >= 594 and xs.max() <= 604
    ramp = (alpha > 0) & (alpha < 1)
    assert ramp.any() and alpha.min() == 0 and alpha.max() == 1
    pairs = torch.sort(torch.stack([near[ramp, 0], far[ramp, 0]]), 0).values
    assert torch.equal(pairs[0], torch.zeros_like(pairs[0])) and torch.allclose(pairs[1], torch.tensor(20.0))
    # a stretch or squeeze of the flow below the jump is one surface: upsampled as before
    smooth = torch.zeros(256, 256, 2)
    smooth[..., 0] = torch.arange(256.0)[None] * (FLOW_JUMP_PX / 2.5)
    assert occluding_edges(smooth, uv, points_per_px=4.0) is None


def test_fine_detail_gives_a_smooth_fill_the_photos_grain_on_a_large_photo():
    from core.composite import DETAIL_MIN_SCALE, add_fine_detail

    rng = np.random.default_rng(3)
    photo = np.clip(128 + rng.normal(0, 6, (1024, 1024, 3)), 0, 255).astype(np.uint8)  # skin's grain
    image = photo.copy()
    image[:, 512:768] = 128  # a smooth fill pasted from the crop, crop columns 128-191
    crop_t = _crop_transform(scale=0.25, x0=0.0, y0=0.0)
    mask = np.zeros((256, 256), np.float32)
    mask[:, 128:192] = 1.0
    grain_flow = torch.zeros(2, 256, 256)
    grain_flow[0, :, 128:192] = -80 * 2 / 256  # read the grain 80 crop pixels to the left, in the sharp photo
    out = add_fine_detail(image, photo, mask, crop_t, grain_flow)
    patch = out[100:900, 540:740].astype(float)
    assert abs(patch.mean() - 128) < 1.0  # the fill's level is kept ...
    assert patch.std() > 4.0 and image[100:900, 540:740].std() == 0  # ... and it has the photo's grain now
    # the grain read is the photo's own, 320 photo pixels to the left
    grain = patch - 128
    source = photo[100:900, 220:420].astype(float) - 128
    assert np.corrcoef(grain.ravel(), source.ravel())[0, 1] > 0.7
    assert np.array_equal(out[:, :480], image[:, :480]) and np.array_equal(out[:, 800:], image[:, 800:])
    # on a photo near the crop's resolution the crop's fill is as sharp as the photo: nothing is added
    near = _crop_transform(scale=1.0 / (DETAIL_MIN_SCALE - 0.1), x0=0.0, y0=0.0)
    assert np.array_equal(add_fine_detail(image, photo, mask, near, grain_flow), image)
