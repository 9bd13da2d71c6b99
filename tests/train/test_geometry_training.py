"""Training a geometry-initialised model (issue #12): the geometry cache, the identity hold-out, a few steps
that run and resume exactly, the curves PNG, starting from given weights and refusing bad weight files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core.train.dataset import PairDataset, list_clips
from core.train.geometry_cache import GeometryCache, GeometryCacheConfig, build_geometry_cache, plan_pairs
from core.train.trainer import Trainer

sys.path.insert(0, str(Path(__file__).parent))
from conftest import tiny_config  # noqa: E402

GEO = {"generator": {"residual_flow": False, "geometry_init": True}}


@pytest.fixture(scope="module")
def geo_root(tmp_path_factory, ict_model):
    """Three synthetic 64 px clips of three identities; id02 is the held-out one in these tests."""
    from core.train.synthetic import make_synthetic_clip

    root = tmp_path_factory.mktemp("geo")
    for i in range(3):
        make_synthetic_clip(root / f"id0{i}" / "clip0", frames=6, size=64, seed=10 + i, model=ict_model)
    return root


@pytest.fixture(scope="module")
def geometry_engine(ict_model):
    from core.engines.geometry import GeometryEngine

    return GeometryEngine(ict_model)


def _config(root, out, steps, **over):
    data = {"geometry_pairs": 4, "geometry_sources": 2, "holdout": ["id02"]}
    return tiny_config(root, out, steps, **GEO, **{**over, "data": {**data, **over.get("data", {})}})


def test_pair_plan_is_deterministic_and_valid():
    cfg = GeometryCacheConfig(pairs=12, sources=3, seed=5)
    a, b = plan_pairs(40, cfg, "clip"), plan_pairs(40, cfg, "clip")
    assert np.array_equal(a, b) and a.shape == (12, 2)
    assert (a[:, 0] != a[:, 1]).all() and len(np.unique(a[:, 0])) == 3
    assert not np.array_equal(a, plan_pairs(40, cfg, "other"))


def test_cache_holds_the_geometry_engines_results(geo_root, geometry_engine, ict_model):
    from core.face.params import FaceParams

    ds = PairDataset(geo_root, size=64, flip=0.0, jitter=0.0)
    cfg = GeometryCacheConfig(pairs=4, sources=2, seed=100)
    counts = build_geometry_cache(ds.clips, cfg, engine=geometry_engine)
    assert counts["built"] == 3
    assert build_geometry_cache(ds.clips, cfg, engine=geometry_engine)["built"] == 0  # kept, not recomputed
    assert len(list_clips(geo_root)) == 3  # the cache folders are not mistaken for clips
    clip = ds.clips[1]
    cache = GeometryCache(clip.path)
    with np.load(clip.path / "params.npz") as z:
        params = FaceParams.from_dict({k: z[k] for k in z.files})
    moved = 0.0
    for k, (src, drv) in enumerate(cache.pairs.tolist()):
        ref = geometry_engine.render(geometry_engine.prepare(clip.image(src), params[src]), params[drv])
        flow, image = cache.read(k)
        assert float((flow - ref.flow[0]).abs().max()) < 2e-3  # float16 storage
        assert torch.equal((image * 255).round().byte().permute(1, 2, 0), torch.from_numpy(ref.images[0]))
        moved = max(moved, float(ref.flow.abs().max()))
    assert moved > 0.05  # the pairs do move the head


def test_holdout_split_and_geometry_items(geo_root, geometry_engine, ict_model):
    from core.face.mirror import model_mirror_map

    build_geometry_cache(
        PairDataset(geo_root, 64, 0.0, 0.0).clips, GeometryCacheConfig(4, 2, 100), engine=geometry_engine
    )
    train = PairDataset(geo_root, 64, 0.0, 0.0, holdout=["id02"], split="train", geometry=True)
    val = PairDataset(geo_root, 64, 0.0, 0.0, holdout=["id02"], split="val", geometry=True)
    assert train.identities == ["id00", "id01"] and val.identities == ["id02"]
    mapped = PairDataset(geo_root, 64, 0.0, 0.0, identity_map={"clip0": "same"})
    assert mapped.identities == ["same"]
    item = train[(0, 0, 0)]
    assert item["geo_flow"].shape == (2, 64, 64) and item["geo_image"].shape == (3, 64, 64)
    assert float(item["t_geometry"]) >= 0
    # a mirrored item carries the mirrored geometry: image flipped, flow flipped with x negated
    mirror = model_mirror_map("ict")
    flipped = PairDataset(geo_root, 64, 1.0, 0.0, mirror=mirror, holdout=["id02"], split="train", geometry=True)
    f = flipped[(0, 0, 0)]
    assert torch.equal(f["geo_image"], item["geo_image"].flip(-1))
    assert torch.equal(f["geo_flow"][0], -item["geo_flow"][0].flip(-1))
    assert torch.equal(f["src"], item["src"].flip(-1))


def test_training_steps_run_resume_and_log(geo_root, tmp_path, ict_model):
    faces = ict_model.render_faces
    straight = Trainer(_config(geo_root, tmp_path / "a", 4, val_every=2, val_pairs=2), faces=faces)
    logs = straight.run()
    assert set(logs) >= {"time/data", "time/geometry", "time/forward_backward", "time/step", "pix"}
    rows = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in rows if "val/l1" in r]
    assert val and {"val/l1_geometry", "val/l1_copy"} <= set(val[0])
    # two training steps from the geometry init: still close to the geometry engine on held-out identities
    assert val[0]["val/l1"] < val[0]["val/l1_copy"]
    assert (tmp_path / "a" / "curves.png").stat().st_size > 5000
    first = Trainer(_config(geo_root, tmp_path / "b", 4, ckpt_every=2, val_every=2, val_pairs=2), faces=faces)
    first.run(2)
    del first
    resumed = Trainer(_config(geo_root, tmp_path / "b", 4, ckpt_every=2, val_every=2, val_pairs=2), faces=faces)
    assert resumed.step == 2
    resumed.run()
    for a, b in zip(straight.state_dicts(), resumed.state_dicts()):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    meta = json.loads((tmp_path / "b" / "pwm.json").read_text())
    assert meta["generator"]["geometry_init"] is True


def test_curves_read_a_resumed_log_as_one_history(tmp_path):
    """A run killed at step 30 after its step-20 checkpoint logs 30 again when resumed: the curves keep the
    redone steps, not both (which drew a loop back at the resume)."""
    from core.train.visualise import plot_curves, read_metrics

    log = tmp_path / "metrics.jsonl"
    rows = [{"step": s, "pix": 1.0} for s in (10, 20, 30)] + [{"step": s, "pix": 2.0} for s in (30, 40)]
    log.write_text("\n".join(json.dumps(r) for r in rows) + '\n{"step": 50, "pi')  # torn last line
    history = read_metrics(log)
    assert [(r["step"], r["pix"]) for r in history] == [(10, 1.0), (20, 1.0), (30, 2.0), (40, 2.0)]
    assert plot_curves(log, tmp_path / "curves.png").stat().st_size > 5000


def test_samples_png(geo_root, tmp_path, ict_model):
    import cv2

    tr = Trainer(_config(geo_root, tmp_path, 1, image_every=1, ckpt_every=0), faces=ict_model.render_faces)
    tr.run()
    img = cv2.imread(str(tmp_path / "samples" / "step_00000001.png"))
    assert img.shape == (5 * 64, 2 * 64, 3)  # source, driving, geometry, output, alpha x batch 2


def test_init_weights_start_a_new_run(geo_root, tmp_path, ict_model):
    faces = ict_model.render_faces
    donor = Trainer(_config(geo_root, tmp_path / "donor", 2), faces=faces)
    donor.run()
    fresh = Trainer(_config(geo_root, tmp_path / "fresh", 2, init_weights=str(tmp_path / "donor")), faces=faces)
    assert fresh.step == 0 and not fresh.opt_g.state  # no optimiser state
    g_donor, _ = donor.state_dicts()
    g_fresh, _ = fresh.state_dicts()
    assert all(torch.equal(g_donor[k], g_fresh[k]) for k in g_donor)
    fresh.run()
    assert fresh.step == 2


def test_training_continues_from_the_shipped_weights_alone(tmp_path, ict_model):
    """``--init-weights weights/`` with no optimiser state: the run starts from the shipped generator (cast
    back to float32) and trains on."""
    from safetensors.torch import load_file

    from core.assets import REPO_ROOT
    from core.train.synthetic import make_synthetic_clip

    shipped_json = REPO_ROOT / "weights" / "pwm.json"
    root = tmp_path / "data"
    make_synthetic_clip(root / "id00" / "clip0", frames=4, size=64, seed=0, model=ict_model)
    meta = json.loads(shipped_json.read_text())
    cfg = tiny_config(
        root,
        tmp_path / "run",
        2,
        generator=meta["generator"],
        data={"geometry_pairs": 2, "geometry_sources": 1, "flip": 0.0},
        init_weights=str(shipped_json.parent),
    )
    trainer = Trainer(cfg, faces=ict_model.render_faces)
    shipped = load_file(str(shipped_json.with_name(meta["weights"])))
    g, _ = trainer.state_dicts()
    assert trainer.step == 0 and all(torch.equal(g[k], shipped[k].to(g[k].dtype)) for k in shipped)
    trainer.run()
    g, _ = trainer.state_dicts()
    assert trainer.step == 2 and not torch.equal(g["embeds.codes"], shipped["embeds.codes"].float())


def test_bad_init_weights_are_refused_clearly(geo_root, tmp_path, ict_model):
    from core.engines.pwm import PWMWeightsError

    faces = ict_model.render_faces
    Trainer(_config(geo_root, tmp_path / "donor", 1), faces=faces).run()
    bad = tmp_path / "donor" / "pwm.safetensors"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])  # truncated, e.g. an interrupted copy
    with pytest.raises(PWMWeightsError, match="not a readable safetensors file.*truncated"):
        Trainer(_config(geo_root, tmp_path / "x", 1, init_weights=str(tmp_path / "donor")), faces=faces)
    bad.write_bytes(data)
    # weights of a model that is not geometry-initialised: the config difference is named
    with pytest.raises(PWMWeightsError, match="geometry_init"):
        Trainer(
            tiny_config(geo_root, tmp_path / "y", 1, init_weights=str(tmp_path / "donor" / "pwm.json")), faces=faces
        )
    with pytest.raises(PWMWeightsError, match="not a readable PWM config"):
        Trainer(_config(geo_root, tmp_path / "z", 1, init_weights=str(tmp_path / "nowhere")), faces=faces)


def test_cpu_recipe_config():
    from core.train.config import load_config
    from core.train.dataset import read_identity_map

    root = Path(__file__).resolve().parents[2]
    cfg = load_config(root / "configs" / "cpu.json")
    assert cfg.generator.geometry_init and cfg.data.size == 256 and cfg.loss.perceptual == "l1_pyramid"
    ids = read_identity_map(root / cfg.data.identities)
    held = {k for k, v in ids.items() if v in cfg.data.holdout}
    assert set(cfg.data.holdout) <= set(ids.values()) and 0 < len(held) < len(ids) / 4


def test_cli_geometry_cache_and_init_weights(geo_root, tmp_path, ict_model, capsys):
    from core.cli import main

    assert main(["geometry-cache", str(geo_root), "--pairs", "4", "--sources", "2", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["built"] == 0  # the tests' caches are current
    donor = _config(geo_root, tmp_path / "donor", 1)
    Trainer(donor, faces=ict_model.render_faces).run()
    cfg = _config(geo_root, tmp_path / "cli", 1)
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg.to_dict()))
    assert main(["train", "--config", str(path), "--init-weights", str(tmp_path / "donor")]) == 0
    saved = json.loads((tmp_path / "cli" / "checkpoints" / "step_00000001" / "config.json").read_text())
    assert saved["init_weights"] == str(tmp_path / "donor")


def test_holdout_absent_from_the_data_skips_validation(geo_root, tmp_path, ict_model, caplog):
    tr = Trainer(
        _config(geo_root, tmp_path, 1, data={"holdout": ["nobody"]}, val_every=1), faces=ict_model.render_faces
    )
    logs = tr.run()
    assert "val/l1" not in logs and "no validation" in caplog.text
    assert len(tr.dataset.clips) == 3  # nothing held out, everything trained on
