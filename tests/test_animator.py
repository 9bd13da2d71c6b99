"""End to end through the public API on real sample portraits (skipped only when the samples are absent)."""

import numpy as np
import pytest

from core.animator import PRESETS, Animator, Source
from core.io.image import ImageError


@pytest.fixture(scope="module")
def animator(samples, ict_model):
    anim = Animator(engine="geometry", model=ict_model)
    anim.load_source(samples / "images" / "assets__examples__source__s1.jpg")
    return anim


def test_no_edit_reproduces_the_crop_and_edits_change_the_face(animator):
    src = animator.source.fit.crop_image
    same = animator.render({})
    assert np.abs(same.astype(int) - src.astype(int)).mean() < 1.0
    turned = animator.render({"yaw": 20, "jawOpen": 0.4})
    face = animator.source.fit.vertices[0, :, :2].numpy()
    x0, y0 = face.min(0).clip(0, 255).astype(int)
    x1, y1 = face.max(0).clip(0, 255).astype(int)
    diff = np.abs(turned.astype(int) - src.astype(int))[y0:y1, x0:x1].mean()
    assert diff > 8
    # the background stays still: outside the person's old and new regions no pixel changes
    layer = animator.inspect({"yaw": 20, "jawOpen": 0.4}).layer[0, 0].numpy()
    background = (animator.source.state.person[0, 0].numpy() == 0) & (layer == 0)
    change = np.abs(turned.astype(int) - src.astype(int)).max(-1)
    assert background.sum() > 1000 and change[background].max() <= 3


def test_full_resolution_result_has_the_original_size(animator):
    out = animator.render({"yaw": -15}, full_resolution=True)
    original = animator.source.original
    assert out.shape == original.shape
    assert not np.array_equal(out, original)
    assert np.array_equal(out[:5, :5], original[:5, :5])


def test_frontalize_turns_the_head_to_zero(animator):
    params = animator.frontal_params()
    assert params.head.abs().max() == 0 and params.neck.abs().max() == 0
    assert animator.frontalize(full_resolution=False).shape == (256, 256, 3)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_render_a_moving_clip(animator, preset):
    frames = animator.animate(preset, seconds=0.5, fps=10)
    assert len(frames) == 5 and frames[0].shape == (256, 256, 3)
    assert max(np.abs(f.astype(int) - frames[0].astype(int)).mean() for f in frames) > 0.3


def test_relative_and_absolute_motion(animator, ict_model):
    driving = animator.params_for({"yaw": 10}).expand(3)
    driving.head[:, 0] = driving.head[:, 0] + torch_tensor([0.0, 5.0, 10.0])
    driving.expression[:, ict_model.expression_names.index("jawOpen")] = torch_tensor([0.1, 0.4, 0.6])
    rel = animator.motion_params(driving, "relative")
    src = animator.params_for()
    assert np.allclose(rel.head[:, 0].numpy(), src.head[0, 0].item() + np.array([0.0, 5.0, 10.0]), atol=1e-5)
    j = ict_model.expression_names.index("jawOpen")
    base = src.expression[0, j].item()
    assert np.allclose(rel.expression[:, j].numpy(), np.clip(base + np.array([0.0, 0.3, 0.5]), 0, 1), atol=1e-5)
    absolute = animator.motion_params(driving, "absolute")
    assert np.allclose(absolute.head.numpy(), driving.head.numpy())
    assert np.allclose(absolute.shape.numpy(), src.shape.expand(3, -1).numpy())  # identity stays the source's
    with pytest.raises(ValueError, match="relative"):
        animator.motion_params(driving, "sideways")


def torch_tensor(values):
    import torch

    return torch.tensor(values)


def test_reenact_from_video_frames(animator, samples):
    from core.io.video import read_video

    frames, info = read_video(samples / "videos" / "samples__source_video__video__Obama_clip1.mp4", max_frames=6)
    out = animator.reenact(frames, mode="relative")
    assert len(out) == 6 and out[0].shape == (256, 256, 3)


def test_bad_sources_give_clear_errors(ict_model, tmp_path):
    anim = Animator(model=ict_model)
    text = tmp_path / "photo.jpg"
    text.write_text("not an image")
    with pytest.raises(ImageError, match="photo.jpg"):
        anim.load_source(text)
    with pytest.raises(ValueError, match="(?i)no face"):
        anim.load_source(np.full((300, 300, 3), 128, np.uint8))
    with pytest.raises(RuntimeError, match="load_source"):
        anim.render({"yaw": 5})
    with pytest.raises(ValueError, match="pwm"):  # a weights folder without pwm.json
        Animator(engine="pwm", model=ict_model, weights=tmp_path)


def _portrait(samples) -> np.ndarray:
    from core.io.image import load_image

    return load_image(samples / "images" / "assets__examples__source__s1.jpg")


@pytest.mark.parametrize("kind", ["grey", "rgba"])
def test_grey_and_rgba_portraits_work(samples, ict_model, kind):
    img = _portrait(samples)
    if kind == "grey":
        src = img.mean(-1).astype(np.uint8)
    else:
        src = np.concatenate([img, np.full(img.shape[:2] + (1,), 255, np.uint8)], -1)
    anim = Animator(model=ict_model)
    anim.load_source(src)
    out = anim.render({"yaw": 15})
    assert out.shape == (256, 256, 3)
    if kind == "grey":  # still grey, the synthesised mouth included
        opened = anim.render({"jawOpen": 0.6}).astype(int)
        assert np.abs(opened - opened.mean(-1, keepdims=True)).max() <= 3


@pytest.mark.slow
def test_6000_by_4000_photo(samples, ict_model):
    import cv2

    face = cv2.resize(_portrait(samples), (2400, 2400), interpolation=cv2.INTER_CUBIC)
    photo = np.full((4000, 6000, 3), 200, np.uint8)
    photo[800:3200, 1800:4200] = face
    anim = Animator(model=ict_model)
    fit = anim.load_source(photo)
    assert fit.original_size == (4000, 6000)
    out = anim.render({"yaw": 15, "jawOpen": 0.3}, full_resolution=True)
    assert out.shape == photo.shape
    changed = np.abs(out.astype(int) - photo.astype(int)).max(-1) > 10
    ys, xs = np.nonzero(changed)
    assert changed.sum() > 10000
    assert ys.min() >= 700 and ys.max() <= 3300 and xs.min() >= 1700 and xs.max() <= 4300  # only the face region


def test_user_values_are_checked(animator):
    from core.face import EditError

    for edits, match in (
        ({"yaw": float("nan")}, "finite"),
        ({"yaw": 1e9}, r"\[-45, 45\]"),
        ({"jawOpen": 2.0}, r"\[0, 1\]"),
        ({"yawn": 1.0}, "unknown control"),
        ({"yaw": "left"}, "number"),
    ):
        with pytest.raises(EditError, match=match):
            animator.render(edits)
    assert animator.model.check_edits({"yaw": -45, "jawOpen": 1}) == {"yaw": -45.0, "jawOpen": 1.0}
    assert animator.model.check_edits({"yaw": 80}, offset=True) == {"yaw": 80.0}  # a change, up to the width


def test_engine_switch_fork_and_shared_sources(animator, ict_model):
    """The studio's needs through public methods: adopt a prepared source, switch engine, fork for a job."""
    from core.animator import Source

    other = Animator(engine="copy", model=ict_model)
    other.use_source(animator.source)  # prepared by geometry: re-prepared for copy, no refit
    assert other.source.engine == "copy" and other.source.fit is animator.source.fit
    assert np.array_equal(other.render({"yaw": 20}), animator.source.fit.crop_image)
    other.switch_engine("geometry")
    assert other.source.engine == "geometry"
    assert np.abs(other.render({"yaw": 20}).astype(int) - animator.render({"yaw": 20})).max() <= 1
    twin = other.fork()
    assert twin.source is other.source and twin.engine is other.engine
    with pytest.raises(ValueError, match="unknown engine"):
        other.switch_engine("nope")
    assert other.engine_name == "geometry"  # kept after the failed switch
    with pytest.raises(AttributeError):
        other.source.state = None  # sources are read-only once made (the studio shares them)
    assert isinstance(other.source, Source)


def test_inspect_gives_typed_layers(animator):
    data = animator.inspect({"yaw": 15})
    s = animator.size
    assert data.image.shape == (s, s, 3) and data.flow.shape == (1, 2, s, s)
    assert data.coverage.shape == (1, 1, s, s) and data.layer.shape == (1, 1, s, s)
    assert data.level_flows == {} and data.codes is None  # the training-free engine has neither
    assert np.abs(data.image.astype(int) - animator.render({"yaw": 15})).max() == 0


def test_crop_view_takes_what_a_nod_brings_from_beyond_the_crop_from_the_photo(animator):
    """A nod brings the hair above the crop into it: the crop view shows the photo's hair there, as the
    full-resolution output does, not the engine's smooth fill from inside the crop."""
    import torch

    from core.coords import pixel_grid
    from core.fit.crop import warp_image

    src = animator.source
    params = animator.params_for({"pitch": float(animator.controls()["pitch"].read(src.params)[0]) - 20.0})
    result = animator.engine.render(src.state, params)
    grid = pixel_grid((256, 256)) + result.flow[0].permute(1, 2, 0)
    beyond = ((grid.abs() > 1.0).any(-1) & torch.from_numpy(result.synthesised[0] < 0.01)).numpy()
    assert beyond.sum() > 200  # the nod reads well past the crop's top
    view = animator.render(params)
    full = warp_image(animator.render(params, full_resolution=True), src.fit.crop, 256)
    err = lambda image: np.abs(image.astype(int) - full.astype(int)).mean(-1)[beyond].mean()  # noqa: E731
    assert err(view) < 4.0 and err(result.images[0]) > 3 * err(view)
    # elsewhere the crop view is the engine's image
    reach = torch.nn.functional.max_pool2d(torch.from_numpy(beyond)[None].float(), 5, 1, 2)[0].numpy()
    assert np.array_equal(view[reach == 0], result.images[0][reach == 0])


def test_a_raised_chin_leaves_the_bottom_of_a_tight_portrait_still(samples, ict_model):
    """A video frame cropped close around the face (the photo ends about where the crop does): raising the
    chin 20 degrees stretches the neck but leaves the clothes along the photo's bottom edge where they were,
    where they used to rise with the neck, a band of the photo's repeated last row pasted below them."""
    anim = Animator(engine="geometry", model=ict_model)
    anim.load_source(samples / "images" / "samples__source_video__image__feifeili_clip1.png")
    src = anim.source
    assert src.around[1].min() == 0  # the photo ends close around the crop
    params = anim.params_for({"pitch": float(anim.controls()["pitch"].read(src.params)[0]) + 20.0})
    k = src.original.shape[0] // 20

    def bottom_change(animator):
        out = animator.render(params, full_resolution=True)
        return np.abs(out[-k:].astype(int) - src.original[-k:].astype(int)).mean()

    # the same engine not told where the photo ends (as before): the neck's flow runs on past the photo's edge
    untold = Animator(engine=anim.engine, model=ict_model)
    untold.use_source(Source(src.original, src.fit, anim.engine.prepare(src.fit.crop_image, src.params), "geometry"))
    assert bottom_change(anim) < 2.0 and bottom_change(untold) > 2 * bottom_change(anim)


def test_the_smooth_fill_of_a_large_turn_takes_the_photos_grain_at_full_resolution(samples, ict_model):
    """A 30 degree turn brings round the side of the face, which the source saw so foreshortened that it gets a
    smooth fill (the result's ``detail``). On a photo 2.4 times the crop's resolution, pasted from the crop,
    that fill was a blurred patch; it now carries grain read from the sharp skin beside it (``detail_flow``
    points at skin the output moved, not made up)."""
    import cv2

    from core.composite import compose_result
    from core.eval.edits import parse_edit, requested_values

    anim = Animator(engine="geometry", model=ict_model)
    anim.load_source(samples / "images" / "assets__examples__source__s2.jpg")
    src = anim.source
    assert 1.0 / src.fit.crop[0, 0] > 2.0  # the photo is finer than the crop
    params = ict_model.apply_edits(src.params, requested_values(ict_model, src.params, parse_edit("yaw-30")))
    out = anim.engine.render(src.state, params)
    detail, s = out.detail[0], out.detail.shape[-1]
    assert detail.max() > 0.9 and np.all(detail <= out.synthesised[0] + 1e-6)
    ys, xs = np.nonzero(detail > 0.9)
    step = out.detail_flow[0].numpy() * (s / 2)
    rx, ry = np.rint(xs + step[0, ys, xs]).astype(int), np.rint(ys + step[1, ys, xs]).astype(int)
    assert (out.synthesised[0][ry, rx] < 0.5).mean() > 0.9  # grain from moved skin
    full = compose_result(src.original, out, 0, src.fit.crop, inside=src.around[1]).astype(np.float32)
    out.detail = None
    smooth = compose_result(src.original, out, 0, src.fit.crop, inside=src.around[1]).astype(np.float32)
    inv = np.linalg.inv(src.fit.crop)
    pts = (inv[:2, :2] @ np.stack([xs, ys]) + inv[:2, 2:]).round().astype(int)  # the fill's centres in the photo

    def grain(img: np.ndarray) -> float:
        fine = np.abs(img - cv2.GaussianBlur(img, (0, 0), 3.0)).mean(-1)
        return float(fine[pts[1], pts[0]].mean())

    assert grain(full) > 2.0 * grain(smooth)
    assert abs(float(full[pts[1], pts[0]].mean()) - float(smooth[pts[1], pts[0]].mean())) < 2.0  # same tone
