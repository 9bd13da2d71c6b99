"""The ``pwm`` engine: weight discovery and checks, batched rendering, the Animator hook."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from core.engines.pwm import PWMEngine, PWMWeightsError, find_weights
from core.model import Generator
from core.train.config import TrainConfig
from core.train.trainer import export_weights


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory, ict_model):
    out = tmp_path_factory.mktemp("weights")
    cfg = TrainConfig.from_dict({"generator": {"preset": "tiny", "variant": "both"}, "data": {"size": 64}})
    torch.manual_seed(0)
    g = Generator(cfg.generator, ict_model.render_faces)
    g(torch.rand(2, 3, 64, 64), *_verts(ict_model, 2))  # a train-mode pass: SN vectors, BN statistics
    export_weights({k: v.detach().clone() for k, v in g.state_dict().items()}, cfg, out, step=1)
    return out


def _verts(m, b):
    p = m.neutral(b)
    p.camera[:] = torch.tensor([1.2 / 14.7, 0.0, 0.12])
    p.head[:, 0] = torch.linspace(-15, 15, b)
    with torch.no_grad():
        v = m.project(m(p), p.camera)
    return v[:1].expand(b, -1, -1), v


def test_no_weights_is_a_clear_value_error(tmp_path, monkeypatch, ict_model):
    monkeypatch.delenv("GDPW_PWM_WEIGHTS", raising=False)
    with pytest.raises(ValueError) as exc:
        PWMEngine(ict_model, weights=tmp_path)
    assert str(tmp_path / "pwm.json") in str(exc.value) and "python -m core train" in str(exc.value)


def test_animator_pwm_without_weights(ict_model, monkeypatch, tmp_path):
    from core.animator import Animator

    # a checkout without the shipped weights (the repository's weights/ moved out of the search)
    monkeypatch.setattr("core.assets.REPO_ROOT", tmp_path / "repo")
    monkeypatch.setenv("GDPW_PWM_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(ValueError) as exc:
        Animator(engine="pwm", model=ict_model)
    msg = str(exc.value)
    assert "weights" in msg and "python -m core train" in msg and str(tmp_path) in msg


def test_wrong_variant_or_preset_or_tensors(weights_dir, tmp_path, ict_model):
    with pytest.raises(PWMWeightsError, match="'both' model, but variant 'geom_disp'"):
        PWMEngine(ict_model, weights=weights_dir, variant="geom_disp")
    with pytest.raises(PWMWeightsError, match="preset 'paper' was requested"):
        PWMEngine(ict_model, weights=weights_dir, preset="paper")
    # a config claiming another variant than the tensors hold
    bad = tmp_path / "bad"
    shutil.copytree(weights_dir, bad)
    meta = json.loads((bad / "pwm.json").read_text())
    meta["generator"]["variant"] = "geom_disp"
    (bad / "pwm.json").write_text(json.dumps(meta))
    with pytest.raises(PWMWeightsError, match="another variant or preset"):
        PWMEngine(ict_model, weights=bad)
    meta["format"] = "something"
    (bad / "pwm.json").write_text(json.dumps(meta))
    with pytest.raises(PWMWeightsError, match="not a PWM weights config"):
        PWMEngine(ict_model, weights=bad / "pwm.json")
    (bad / "pwm.json").write_text(json.dumps({**meta, "format": "gdpw-pwm", "weights": "missing.safetensors"}))
    with pytest.raises(PWMWeightsError, match="does not exist"):
        PWMEngine(ict_model, weights=bad)


def test_engine_renders_batches_with_debug(weights_dir, ict_model):
    eng = PWMEngine(ict_model, weights=weights_dir, device="cpu", batch_size=2)
    from core.model import has_spectral_norm

    assert not has_spectral_norm(eng.generator) and not eng.generator.training
    assert find_weights(weights_dir) == weights_dir / "pwm.json"
    src = ict_model.neutral(1)
    src.camera[:] = torch.tensor([1.2 / 14.7, 0.0, 0.12])
    crop = (np.random.default_rng(0).random((128, 128, 3)) * 255).astype(np.uint8)  # resized to 64 inside
    state = eng.prepare(crop, src)
    tgt = ict_model.neutral(3)
    tgt.camera[:] = src.camera
    tgt.head[:, 0] = torch.tensor([-10.0, 0.0, 10.0])
    res = eng.render(state, tgt, debug=True)
    assert res.images.shape == (3, 128, 128, 3) and res.images.dtype == np.uint8
    assert res.flow is None and res.synthesised is None
    assert sorted(res.debug["flows"]) == [1, 2, 4] and res.debug["flows"][1].shape == (3, 2, 64, 64)
    assert res.debug["mesh_flow"].shape == (3, 2, 64, 64)
    # batching does not change the result
    one = eng.render(state, _slice(tgt, 2))
    assert np.abs(one.images[0].astype(int) - res.images[2].astype(int)).max() <= 1


def _slice(p, i):
    from core.face.params import FIELD_NAMES, FaceParams

    return FaceParams(**{n: getattr(p, n)[i : i + 1] for n in FIELD_NAMES})


def test_truncated_or_foreign_weights_are_refused(weights_dir, tmp_path, ict_model):
    bad = tmp_path / "truncated"
    shutil.copytree(weights_dir, bad)
    data = (bad / "pwm.safetensors").read_bytes()
    (bad / "pwm.safetensors").write_bytes(data[: len(data) // 3])  # an interrupted download or copy
    with pytest.raises(PWMWeightsError, match=r"not a readable safetensors file \(\d+ bytes; truncated"):
        PWMEngine(ict_model, weights=bad)
    (bad / "pwm.safetensors").write_bytes(b"\x80\x04not safetensors but a pickle")  # never unpickled
    with pytest.raises(PWMWeightsError, match="not a readable safetensors file"):
        PWMEngine(ict_model, weights=bad)
    (bad / "pwm.json").write_text("[1, 2]")
    with pytest.raises(PWMWeightsError, match="not a PWM weights config"):
        PWMEngine(ict_model, weights=bad)


def test_alpha_scale_from_the_weights_file(weights_dir, tmp_path, ict_model):
    """``export-weights --alpha-scale`` records the blend calibration, the engine applies it (an argument
    overrides it), a re-export keeps it, and a value outside [0, 1] is refused with the file named."""
    from core.train.export import export_for_shipping

    assert PWMEngine(ict_model, weights=weights_dir, device="cpu").alpha_scale == 1.0
    meta = export_for_shipping(weights_dir, tmp_path / "cal", alpha_scale=0.4)
    assert meta["alpha_scale"] == 0.4
    assert PWMEngine(ict_model, weights=tmp_path / "cal", device="cpu").alpha_scale == 0.4
    assert PWMEngine(ict_model, weights=tmp_path / "cal", device="cpu", alpha_scale=0.9).alpha_scale == 0.9
    assert export_for_shipping(tmp_path / "cal", tmp_path / "again")["alpha_scale"] == 0.4
    with pytest.raises(ValueError, match="alpha_scale"):
        export_for_shipping(weights_dir, tmp_path / "no", alpha_scale=1.5)
    with pytest.raises(ValueError, match="alpha_scale"):
        PWMEngine(ict_model, weights=weights_dir, device="cpu", alpha_scale=-0.1)
    bad = tmp_path / "cal" / "pwm.json"
    for value in (1.5, -0.1, "half", True):
        bad.write_text(json.dumps({**meta, "alpha_scale": value}))
        with pytest.raises(PWMWeightsError, match=r"pwm.json: alpha_scale must be a number in \[0, 1\]"):
            PWMEngine(ict_model, weights=bad)
