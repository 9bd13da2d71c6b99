"""A training run killed with SIGKILL mid-step resumes from its last checkpoint, and what the kill left
half-written is swept away."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.train.conftest import tiny_config

ROOT = Path(__file__).resolve().parents[2]


def test_sigkill_mid_training_resumes_from_the_last_checkpoint(synthetic_root, tmp_path, ict_model):
    from core.train.trainer import Trainer

    out = tmp_path / "run"
    cfg = tiny_config(synthetic_root, out, 400, ckpt_every=2)
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg.to_dict()))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "core", "train", "--config", str(path)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    latest = out / "checkpoints" / "latest.json"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if latest.is_file() and json.loads(latest.read_text())["step"] >= 4:
            break
        time.sleep(0.2)
    time.sleep(0.3)  # somewhere inside a later step
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    step = json.loads(latest.read_text())["step"]
    assert step >= 4
    # what a kill during a checkpoint write leaves: a temporary folder and a temporary latest.json
    stale = out / "checkpoints" / f".tmp-step_{step + 2:08d}-99999"
    stale.mkdir()
    (stale / "generator.safetensors").write_bytes(b"half")
    (out / "checkpoints" / ".latest.json.tmp99999").write_text("{")
    resumed = Trainer(tiny_config(synthetic_root, out, step + 2, ckpt_every=2))
    assert resumed.step == step
    resumed.run()
    resumed.close()
    assert resumed.step == step + 2
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert not [n for n in names if n.startswith(".")], names
    assert json.loads(latest.read_text())["step"] == step + 2
