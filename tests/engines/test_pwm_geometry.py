"""A geometry-initialised ``pwm`` model before training renders what the geometry engine renders (issue #12):
training can only start from the training-free engine's quality."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.engines.geometry import GeometryEngine
from core.engines.pwm import PWMEngine
from core.model import Generator
from core.train.config import TrainConfig
from core.train.trainer import export_weights


@pytest.fixture(scope="module")
def portrait(ict_model):
    """The embedded default portrait's 256 px crop and fit."""
    from core.fit import fit_image
    from core.io.examples import default_portrait

    fit = fit_image(default_portrait(), model=ict_model)
    return fit.crop_image, fit.params


@pytest.fixture(scope="module")
def untrained(tmp_path_factory, ict_model):
    """An untrained (but BatchNorm-warmed) geometry-initialised 'tiny' model exported at 256 px."""
    out = tmp_path_factory.mktemp("geo_init")
    cfg = TrainConfig.from_dict(
        {"generator": {"preset": "tiny", "variant": "neural_codes", "geometry_init": True}, "data": {"size": 256}}
    )
    torch.manual_seed(0)
    g = Generator(cfg.generator, ict_model.render_faces)
    export_weights({k: v.detach().clone() for k, v in g.state_dict().items()}, cfg, out, step=0)
    return out


def _targets(params, ict_model):
    names = ict_model.expression_names
    edits = [{"yaw": 15.0}, {"pitch": -10.0, "jawOpen": 0.5}, {"yaw": -20.0, names[0]: 0.6}]
    return [ict_model.apply_edits(params, e) for e in edits]


def test_untrained_geometry_init_equals_the_geometry_engine(untrained, portrait, ict_model):
    crop, params = portrait
    geometry = GeometryEngine(ict_model)
    pwm = PWMEngine(ict_model, weights=untrained, device="cpu", geometry=geometry)
    assert pwm.generator.config.geometry_init
    from core.face.params import FaceParams

    target = FaceParams.cat(_targets(params, ict_model))
    ref = geometry.render(geometry.prepare(crop, params), target)
    out = pwm.render(pwm.prepare(crop, params), target, debug=True)
    diff = np.abs(out.images.astype(int) - ref.images.astype(int))
    print(f"untrained geometry-init pwm vs geometry: max |diff| {diff.max()}/255 over {diff.shape[0]} crops")
    assert diff.max() <= 2
    # the edits did move the face (not a trivial identity comparison) ...
    assert np.abs(ref.images.astype(int) - crop[None].astype(int)).max() > 50
    # ... and the per-level flows start at the geometry engine's complete flow, still inspectable
    assert torch.allclose(out.debug["flows"][1], ref.flow, atol=1e-6)
    assert torch.allclose(out.debug["geometry_flow"], ref.flow, atol=1e-6)
    assert float(out.debug["alpha"].max()) < 0.003
    insp = pwm.inspect(pwm.prepare(crop, params), target[:1])
    assert sorted(insp.level_flows) == [1, 2, 4] and any("geometry-initialised" in n for n in insp.notes)


def test_untrained_geometry_init_equals_the_geometry_engine_at_full_resolution(untrained, ict_model):
    """Full-resolution output moves the photo's own pixels with the geometry engine's flow and blends the
    generator's pixels in by its alpha, so it keeps the photo's detail: an untrained model (alpha ~0) gives
    the geometry engine's full-resolution image, where pasting the 256 px crop back would blur the face."""
    from core.animator import Animator
    from core.io.examples import default_portrait

    geometry = GeometryEngine(ict_model)
    pwm = PWMEngine(ict_model, weights=untrained, device="cpu", geometry=geometry)
    photo = default_portrait()
    outs = {}
    for name, engine in (("geometry", geometry), ("pwm", pwm)):
        anim = Animator(engine=engine, model=ict_model)
        anim.load_source(photo)
        outs[name] = anim.render({"yaw": 15.0, "jawOpen": 0.4}, full_resolution=True)
    assert outs["pwm"].shape == photo.shape and max(photo.shape[:2]) > 256
    diff = np.abs(outs["pwm"].astype(int) - outs["geometry"].astype(int))
    assert diff.max() <= 2, diff.max()
    assert np.abs(outs["geometry"].astype(int) - photo.astype(int)).max() > 50  # the edit moved the face


def test_pwm_tells_its_geometry_engine_where_the_photo_ends_at_the_models_size(untrained, portrait, ict_model):
    """A 512 px crop for a 256 px model: the photo's mask around the crop is scaled with the crop."""
    import cv2

    crop, params = portrait
    pwm = PWMEngine(ict_model, weights=untrained, device="cpu", geometry=GeometryEngine(ict_model))
    big = cv2.resize(crop, (512, 512), interpolation=cv2.INTER_LINEAR)
    photo = np.ones((512 + 128, 512 + 128), np.float32)
    photo[64 + 512 :] = 0  # the photo ends at the crop's bottom edge
    edge = pwm.prepare(big, params, photo).geometry.edge_distance[0, 0]
    assert edge.shape == (256 + 64, 256 + 64)
    assert edge[32 + 256 :].max() == 0 and edge[: 32 + 256].min() >= 1
    # ... and so is the photo around the crop, which its geometry engine layers beyond the crop, and the result
    # carries that layer at the caller's size, the model's images in the middle
    around = cv2.copyMakeBorder(big, 128, 128, 128, 128, cv2.BORDER_REFLECT)  # a quarter of the crop each side
    state = pwm.prepare(big, params, np.ones(around.shape[:2], np.float32), around)
    m = pwm.geometry.margin_px(256)
    assert state.geometry.ring.image.shape[-1] == 256 + 2 * m
    result = pwm.render(state, ict_model.apply_edits(params, {"yaw": 20.0}))
    big_m = result.margin
    assert result.outer_images.shape == (1, 512 + 2 * big_m, 512 + 2 * big_m, 3)
    assert np.array_equal(result.outer_images[0, big_m : big_m + 512, big_m : big_m + 512], result.images[0])
