"""The engine switch: only geometry without learned weights; with weights the learned engine is offered,
runs, and its per-level flows show in Inspect; an engine that cannot start falls back with a message."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("gradio")


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    # a checkout without the shipped weights (the repository's weights/ moved out of the search)
    monkeypatch.setattr("core.assets.REPO_ROOT", tmp_path / "repo")
    monkeypatch.setenv("GDPW_PWM_WEIGHTS", str(tmp_path / "none"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def tiny_weights(tmp_path, monkeypatch, ict_model):
    """Untrained tiny PWM weights (64 px) exported as the trainer does, found through $GDPW_PWM_WEIGHTS."""
    from core.model import Generator
    from core.train.config import TrainConfig
    from core.train.trainer import export_weights

    cfg = TrainConfig.from_dict(
        {"generator": {"preset": "tiny", "variant": "both", "residual_flow": True}, "data": {"size": 64}}
    )
    torch.manual_seed(0)
    g = Generator(cfg.generator, ict_model.render_faces)
    export_weights({k: v.detach().clone() for k, v in g.state_dict().items()}, cfg, tmp_path, step=1)
    monkeypatch.setenv("GDPW_PWM_WEIGHTS", str(tmp_path))
    return tmp_path


def _studio(ict_model):
    import studio.app as app
    from studio.session import Shared

    studio = app.Studio(shared=Shared(model=ict_model), samples=False)
    studio.build()
    return studio


def test_no_weights_no_switch(ict_model, no_weights):
    studio = _studio(ict_model)
    assert studio.engine_radio.choices == [("geometry", "geometry")]
    assert studio.engine_radio.interactive is False
    assert "none found" in studio.engine_radio.info
    out = studio.on_view("inspect", None)
    assert out[studio.levels_img] is None
    assert "no trained weights" in out[studio.inspect_md]
    assert "none with the `geometry` engine" in out[studio.inspect_md] and out[studio.codes_img] is None


def test_engine_that_cannot_start_falls_back(ict_model, no_weights, monkeypatch, tmp_path):
    import studio.app as app

    monkeypatch.setattr(app, "weights_available", lambda: [tmp_path / "pwm.json"])
    studio = _studio(ict_model)
    assert [c[1] for c in studio.engine_radio.choices] == ["geometry", "pwm"]
    out = studio.on_engine("pwm", None)
    assert out[studio.engine_radio] == "geometry"
    assert "could not start" in out[studio.status]
    assert studio.store.get(None).engine_name == "geometry"
    assert out[studio.result_img].shape == (256, 256, 3)


def test_learned_engine_runs_and_shows_its_pyramid(ict_model, tiny_weights):
    studio = _studio(ict_model)
    assert studio.engine_radio.interactive is True
    before = studio.on_reset(None)[studio.result_img]
    session = studio.store.get(None)
    session.apply({**session.values, "yaw": 15.0}, link=True)
    out = studio.on_engine("pwm", None)
    assert session.engine_name == "pwm" and "Engine: pwm" in out[studio.status]
    assert float(session.params.head[0, 0]) == 15.0  # the edit survives the switch
    img = out[studio.result_img]
    assert img.shape == (256, 256, 3) and np.abs(img.astype(int) - before.astype(int)).mean() > 1
    out = studio.on_view("inspect", None)
    levels = out[studio.levels_img]
    assert levels is not None and levels.shape[0] == 128 and levels.shape[1] > 3 * 128
    assert "trained codes" in out[studio.inspect_md]
    assert out[studio.flow_img].shape == (256, 256, 3)
    full, path = session.render_full()
    assert path.is_file()


def test_truncated_weights_fall_back_with_a_message(ict_model, tiny_weights):
    """A damaged weights file (cut short in a download): pwm is offered (its JSON is there), choosing it
    says what is wrong with the file, and the session goes on with geometry."""
    path = tiny_weights / "pwm.safetensors"
    path.write_bytes(path.read_bytes()[:1000])
    studio = _studio(ict_model)
    assert [c[1] for c in studio.engine_radio.choices] == ["geometry", "pwm"]
    before = studio.on_reset(None)[studio.result_img]
    out = studio.on_engine("pwm", None)
    assert out[studio.engine_radio] == "geometry"
    assert "could not start" in out[studio.status] and "truncated" in out[studio.status]
    assert studio.store.get(None).engine_name == "geometry"
    assert np.array_equal(out[studio.result_img], before)  # the photo and its edits are still there
