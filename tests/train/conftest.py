"""Synthetic training data (rendered ICT clips in the preprocessed layout) shared by the training tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory, ict_model):
    from core.train.synthetic import make_synthetic_clip

    root = tmp_path_factory.mktemp("synthetic")
    make_synthetic_clip(root / "id00" / "clip0", frames=6, size=64, seed=0, model=ict_model)
    make_synthetic_clip(root / "id01" / "clip0", frames=6, size=64, seed=1, model=ict_model)
    return root


@pytest.fixture(scope="session")
def pair_root(tmp_path_factory, ict_model):
    """One clip of two frames: the single training pair of the overfitting check."""
    from core.train.synthetic import make_synthetic_clip

    root = tmp_path_factory.mktemp("pair")
    make_synthetic_clip(root / "clip", frames=2, size=64, seed=3, model=ict_model, yaw=20.0)
    return root


def tiny_config(root, out_dir, steps: int, **over):
    from core.train.config import TrainConfig

    data = {
        "generator": {"preset": "tiny", "variant": "neural_codes", "residual_flow": True},
        "discriminator": {"base": 8},
        "loss": {"gan": "ls", "perceptual": "l1_pyramid"},
        "data": {"root": str(root), "size": 64, "batch_size": 2, "flip": 0.5, "jitter": 0.1, "workers": 0},
        "optim": {"steps": steps},
        "out_dir": str(out_dir),
        "deterministic": True,
        "device": "cpu",
        "amp": "none",
        "log_every": 1,
        "image_every": 0,
        "ckpt_every": steps,
        "threads": 1,
    }
    for k, v in over.items():
        if isinstance(v, dict):
            data.setdefault(k, {}).update(v)
        else:
            data[k] = v
    return TrainConfig.from_dict(data)
