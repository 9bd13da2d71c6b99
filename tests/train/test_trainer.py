"""Trainer: overfitting one pair, exact resume, DDP consistency, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from core.train.trainer import Trainer

sys.path.insert(0, str(Path(__file__).parent))
from conftest import tiny_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _assert_same(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys(), what
    for k in a:
        assert torch.equal(a[k], b[k]), f"{what}: {k} differs"


def _flat_opt(state: dict) -> dict:
    out = {}
    for pid, st in state["state"].items():
        for name, t in st.items():
            out[f"{pid}.{name}"] = torch.as_tensor(t)
    return out


@pytest.mark.slow
def test_overfits_one_pair(pair_root, tmp_path, ict_model):
    """One clip of two frames at 64 px, 200 steps: the reconstruction loss (pixel + perceptual terms) on the
    training pair falls by more than half (measured: about 10.4 -> 1.1 in ~25 s on 2 CPU cores)."""
    cfg = tiny_config(
        pair_root, tmp_path, 200, data={"flip": 0.0, "jitter": 0.0, "batch_size": 1}, ckpt_every=0, resume="none"
    )
    tr = Trainer(cfg, faces=ict_model.render_faces)
    hist = []
    for batch in tr.batches(0, 200):
        logs = tr.train_step(batch)
        tr.step += 1
        hist.append(logs["pix"] + logs["vgg"])
    start, end = float(np.mean(hist[:10])), float(np.mean(hist[-10:]))
    print(f"overfit: reconstruction loss {start:.3f} -> {end:.3f} ({end / start:.1%})")
    assert end < 0.5 * start


def test_resume_is_exact(synthetic_root, tmp_path, ict_model):
    faces = ict_model.render_faces
    straight = Trainer(tiny_config(synthetic_root, tmp_path / "a", 6), faces=faces)
    straight.run()
    first = Trainer(tiny_config(synthetic_root, tmp_path / "b", 6, ckpt_every=3), faces=faces)
    first.run(3)
    assert (tmp_path / "b" / "checkpoints" / "step_00000003" / "state.pt").is_file()
    del first
    resumed = Trainer(tiny_config(synthetic_root, tmp_path / "b", 6, ckpt_every=3), faces=faces)
    assert resumed.step == 3
    resumed.run()
    assert resumed.step == 6
    for a, b, what in zip(straight.state_dicts(), resumed.state_dicts(), ("generator", "discriminator")):
        _assert_same(a, b, what)
    _assert_same(_flat_opt(straight.opt_g.state_dict()), _flat_opt(resumed.opt_g.state_dict()), "Adam G")
    _assert_same(_flat_opt(straight.opt_d.state_dict()), _flat_opt(resumed.opt_d.state_dict()), "Adam D")
    # the final checkpoints on disk agree too, and the export is engine-ready
    ga = load_file(str(tmp_path / "a" / "checkpoints" / "step_00000006" / "generator.safetensors"))
    gb = load_file(str(tmp_path / "b" / "checkpoints" / "step_00000006" / "generator.safetensors"))
    _assert_same(ga, gb, "saved generator")
    meta = json.loads((tmp_path / "b" / "pwm.json").read_text())
    assert meta["variant"] == "neural_codes" and meta["step"] == 6
    assert json.loads((tmp_path / "b" / "checkpoints" / "latest.json").read_text())["step"] == 6


def test_lr_schedule():
    from core.train.config import OptimConfig

    o = OptimConfig()
    assert [o.lr_g * o.lr_factor(s) for s in (0, 79_999, 80_000, 160_000)] == pytest.approx([2e-4, 2e-4, 2e-5, 2e-6])


def test_code_table_learns_at_its_own_rate(synthetic_root, tmp_path, ict_model):
    cfg = tiny_config(synthetic_root, tmp_path / "run", steps=1, optim={"lr_g": 1e-4, "codes_lr_scale": 10.0})
    trainer = Trainer(cfg, faces=ict_model.render_faces)
    try:
        trainer.set_lr()
        groups = trainer.opt_g.param_groups
        codes = [g for g in groups if any(p is trainer.G.embeds.codes for p in g["params"])]
        assert len(codes) == 1 and len(groups) == 2
        assert codes[0]["lr"] == pytest.approx(1e-3)
        assert [g["lr"] for g in groups if g is not codes[0]] == pytest.approx([1e-4])
        # every G parameter is optimised exactly once
        assert sum(len(g["params"]) for g in groups) == len(list(trainer.G.parameters()))
    finally:
        trainer.close()


@pytest.mark.slow
def test_ddp_two_processes_agree(synthetic_root, tmp_path):
    """torchrun, 2 processes, gloo on CPU, 5 steps: both ranks end with identical parameters. (BatchNorm running
    statistics are per rank on CPU, where SyncBatchNorm is unavailable, so they are not compared.)"""
    cfg = tiny_config(synthetic_root, tmp_path / "ddp", 5, ckpt_every=5)
    (tmp_path / "cfg.json").write_text(json.dumps(cfg.to_dict()))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes",
        "1",
        "--nproc_per_node",
        "2",
        str(Path(__file__).parent / "ddp_worker.py"),
        str(tmp_path / "cfg.json"),
    ]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    r0 = load_file(str(tmp_path / "ddp" / "rank0.safetensors"))
    r1 = load_file(str(tmp_path / "ddp" / "rank1.safetensors"))
    from core.model import Discriminator, DiscriminatorConfig, Generator

    params = {f"G.{n}" for n, _ in Generator(cfg.generator).named_parameters()}
    params |= {f"D.{n}" for n, _ in Discriminator(DiscriminatorConfig(base=8)).named_parameters()}
    sn = {k for k in r0 if k.endswith(("weight_u", "weight_v"))}
    assert params <= r0.keys()
    for k in params | sn:
        assert torch.equal(r0[k], r1[k]), k
    # the ranks did see different data: their BN statistics differ
    assert any(not torch.equal(r0[k], r1[k]) for k in r0 if k.endswith("running_mean"))
    assert (tmp_path / "ddp" / "checkpoints" / "step_00000005" / "generator.safetensors").is_file()


def test_train_cli(synthetic_root, tmp_path):
    cfg = tiny_config(synthetic_root, tmp_path / "cli", 2)
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg.to_dict()))
    from core.cli import main

    assert main(["train", "--config", str(path), "--set", "optim.steps=2", "--set", 'loss.gan="hinge"']) == 0
    assert (tmp_path / "cli" / "pwm.safetensors").is_file()
    assert (tmp_path / "cli" / "metrics.jsonl").read_text().count("\n") == 2


def test_config_errors(tmp_path):
    from core.train.config import load_config

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"optim": {"stepz": 3}}))
    with pytest.raises(ValueError, match="stepz"):
        load_config(bad)
    toml = tmp_path / "c.toml"
    toml.write_text('out_dir = "x"\n[generator]\npreset = "tiny"\nvariant = "both"\n[optim]\nsteps = 7\n')
    cfg = load_config(toml, ["data.size=128"])
    assert cfg.generator.variant == "both" and cfg.optim.steps == 7 and cfg.data.size == 128
    for name in ("paper", "official", "tiny_cpu", "cpu"):
        load_config(ROOT / "configs" / f"{name}.json")
