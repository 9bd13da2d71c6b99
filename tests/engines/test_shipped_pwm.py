"""The learned engine's shipped weights (``weights/pwm.json`` + ``pwm.safetensors``, issue #12): found first by
a plain checkout, loaded as the model card says, rendering a trained correction over the geometry engine, and
a starting point for more training with nothing but the files in ``weights/`` (that test lives with the
training tests: ``tests/train/test_geometry_training.py``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.assets import REPO_ROOT

SHIPPED = REPO_ROOT / "weights" / "pwm.json"


@pytest.fixture
def plain_search(monkeypatch):
    """The default search order of a fresh checkout: no override variable, an empty user cache."""
    monkeypatch.delenv("GDPW_PWM_WEIGHTS", raising=False)


@pytest.fixture(scope="module")
def portrait(ict_model):
    from core.fit import fit_image
    from core.io.examples import default_portrait

    fit = fit_image(default_portrait(), model=ict_model)
    return fit.crop_image, fit.params


def test_shipped_files_and_card():
    meta = json.loads(SHIPPED.read_text())
    weights = SHIPPED.with_name(meta["weights"])
    assert meta["format"] == "gdpw-pwm" and meta["generator"]["geometry_init"] is True
    assert meta["dtype"] == "float16" and meta["size"] == 256 and meta["step"] > 0
    assert weights.stat().st_size < 50e6
    card = (REPO_ROOT / "weights" / "README.md").read_text()
    for needed in ("license", "held out", "geometry", "copy", f"{meta['step']}"):
        assert needed.lower() in card.lower(), needed


def test_shipped_weights_load_and_render(plain_search, portrait, ict_model):
    from core.engines.geometry import GeometryEngine
    from core.engines.pwm import PWMEngine

    geometry = GeometryEngine(ict_model)
    pwm = PWMEngine(ict_model, device="cpu", geometry=geometry)
    assert pwm.meta_path == SHIPPED
    crop, params = portrait
    target = ict_model.apply_edits(params, {"yaw": 15.0, "jawOpen": 0.4})
    ref = geometry.render(geometry.prepare(crop, params), target)
    out = pwm.render(pwm.prepare(crop, params), target, debug=True)
    diff = np.abs(out.images.astype(np.float64) - ref.images.astype(np.float64)) / 255.0
    # trained: a correction over the geometry engine's image, not a copy of it and not another picture
    assert float(out.debug["alpha"].max()) > 0.05
    assert 0.001 < float(diff.mean()) < 0.05, float(diff.mean())
    assert sorted(out.debug["flows"]) == [1, 2, 4, 8]


def test_shipped_blend_calibration(plain_search, portrait, ict_model):
    """The shipped ``alpha_scale`` (model card: chosen by cross-validation over the held-out identities)
    scales the network's alpha, and at 0 the engine renders exactly the geometry engine's image."""
    import torch

    from core.engines.geometry import GeometryEngine
    from core.engines.pwm import PWMEngine

    scale = json.loads(SHIPPED.read_text()).get("alpha_scale", 1.0)
    assert 0.0 < scale <= 1.0 and "alpha_scale" in (REPO_ROOT / "weights" / "README.md").read_text()
    geometry = GeometryEngine(ict_model)
    pwm = PWMEngine(ict_model, device="cpu", geometry=geometry)
    assert pwm.alpha_scale == scale
    crop, params = portrait
    target = ict_model.apply_edits(params, {"yaw": -10.0, "jawOpen": 0.3})
    state = pwm.prepare(crop, params)
    shipped = pwm.render(state, target, debug=True).debug["alpha"]
    pwm.alpha_scale = 1.0
    raw = pwm.render(state, target, debug=True).debug["alpha"]
    assert float(raw.max()) > 0.05 and torch.allclose(shipped, scale * raw, atol=1e-6)
    pwm.alpha_scale = 0.0
    ref = geometry.render(geometry.prepare(crop, params), target)
    assert np.array_equal(pwm.render(state, target).images, ref.images)
