"""End to end through the public API on real sample portraits (skipped only when the samples are absent)."""

import numpy as np
import pytest

from core.animator import PRESETS, Animator
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
    # the background stays still: almost every source background pixel is unchanged
    background = animator.source.state.person[0, 0].numpy() == 0
    unchanged = np.abs(turned.astype(int) - src.astype(int)).max(-1) <= 2
    assert background.sum() > 1000 and unchanged[background].mean() > 0.95


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
    with pytest.raises(ValueError, match="pwm"):
        Animator(engine="pwm", model=ict_model)


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
