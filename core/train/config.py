"""Training configuration: dataclasses plus loading from one JSON or TOML file (``configs/*.json``).

A file holds the sections ``generator`` (a preset name, a variant and overrides of ``GeneratorConfig``),
``discriminator``, ``loss``, ``data``, ``optim`` and the top-level run settings. Anything left out takes the
defaults below (the paper's schedule, spec section 9). ``--set section.key=value`` on the command line
overrides single entries (values are parsed as JSON when they can be, else kept as strings).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from core.model.discriminator import DiscriminatorConfig
from core.model.generator import GeneratorConfig
from core.model.losses import LossConfig

__all__ = ["DataConfig", "OptimConfig", "TrainConfig", "load_config", "apply_overrides"]


@dataclass
class DataConfig:
    """``root``: a folder written by ``python -m core preprocess``; ``size``: training resolution (frames are
    area-resized when stored at another size); ``batch_size``: the *global* batch (split over DDP ranks);
    ``flip``: probability of the mirrored horizontal flip; ``jitter``: colour-jitter strength shared by a pair
    (brightness, contrast, saturation, hue); ``workers``: DataLoader worker processes per rank;
    ``max_clips``: use only the first N clips (0 = all), e.g. for overfitting runs; ``identities``: a CSV
    mapping clip names to identities (``file``, ``identity`` columns; "" = from the folder layout);
    ``holdout``: identities kept for validation and never trained on; ``geometry_pairs`` /
    ``geometry_sources``: size of each clip's precomputed pool of geometry-engine results (only for
    ``geometry_init`` models, ``core.train.geometry_cache``)."""

    root: str = "data/voxceleb"
    size: int = 256
    batch_size: int = 16
    flip: float = 0.5
    jitter: float = 0.1
    workers: int = 4
    max_clips: int = 0
    identities: str = ""
    holdout: tuple[str, ...] = ()
    geometry_pairs: int = 32
    geometry_sources: int = 8


@dataclass
class OptimConfig:
    """Adam (beta 0.9, 0.999, no weight decay) for G and D; step decay by ``gamma`` at ``milestones``
    (the paper: 2e-4 -> 2e-5 -> 2e-6, we read the garbled iteration counts as 80k and 160k); ``steps``: total
    iterations of the run. ``codes_lr_scale``: the neural-code table learns this many times faster than the
    rest of G (1 in the paper; a short CPU run raises it so the codes move away from their random
    initialisation within a few hundred steps)."""

    lr_g: float = 2e-4
    lr_d: float = 2e-4
    codes_lr_scale: float = 1.0
    betas: tuple[float, float] = (0.9, 0.999)
    milestones: tuple[int, ...] = (80_000, 160_000)
    gamma: float = 0.1
    steps: int = 200_000

    def lr_factor(self, step: int) -> float:
        return self.gamma ** sum(step >= m for m in self.milestones)


@dataclass
class TrainConfig:
    """A whole run. ``out_dir`` receives ``checkpoints/``, ``tb/`` (TensorBoard), ``metrics.jsonl`` and the
    engine-ready ``pwm.safetensors`` + ``pwm.json``. ``amp``: ``"bf16"`` autocast on CUDA (ignored on CPU) or
    ``"none"``; ``deterministic``: deterministic algorithms (exact resume checks); ``device``: ``"auto"``,
    ``"cpu"`` or ``"cuda"``; ``resume``: ``"auto"`` (latest checkpoint in ``out_dir`` if any), ``"none"`` or
    a checkpoint folder; ``init_weights``: a ``pwm.json`` (or its folder) whose generator weights start a
    *new* run (no optimiser state, step 0; ignored when a checkpoint is resumed); ``val_every``: validate on
    ``val_pairs`` fixed pairs of the held-out identities every N steps (0 = never); ``curves_every``: redraw
    ``curves.png`` from ``metrics.jsonl`` every N steps (and at every checkpoint; 0 = only at checkpoints)."""

    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    out_dir: str = "runs/pwm"
    seed: int = 100
    amp: str = "bf16"
    deterministic: bool = False
    device: str = "auto"
    resume: str = "auto"
    log_every: int = 50
    image_every: int = 1000
    ckpt_every: int = 2000
    keep_checkpoints: int = 3
    threads: int = 0
    init_weights: str = ""
    val_every: int = 0
    val_pairs: int = 8
    curves_every: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = {k: v for k, v in data.items() if not k.startswith("_")}  # "_comment" entries
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}; known: {sorted(known)}")
        gen = dict(data.pop("generator", {}) or {})
        preset = gen.pop("preset", "paper")
        variant = gen.pop("variant", "neural_codes")
        out = cls(
            generator=GeneratorConfig.from_preset(preset, variant, **gen),
            discriminator=_make(DiscriminatorConfig, data.pop("discriminator", {}), "discriminator"),
            loss=_make(LossConfig, data.pop("loss", {}), "loss"),
            data=_make(DataConfig, data.pop("data", {}), "data"),
            optim=_make(OptimConfig, data.pop("optim", {}), "optim"),
            **data,
        )
        if out.amp not in ("bf16", "none"):
            raise ValueError(f"amp must be 'bf16' or 'none', got '{out.amp}'")
        out.optim.betas = tuple(out.optim.betas)
        out.optim.milestones = tuple(out.optim.milestones)
        out.data.holdout = tuple(out.data.holdout)
        return out


def _make(cls, data: dict[str, Any] | None, name: str):
    data = dict(data or {})
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown keys in [{name}]: {sorted(unknown)}; known: {sorted(known)}")
    return cls(**data)


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_overrides(data: dict[str, Any], items: list[str]) -> dict[str, Any]:
    """``["optim.steps=100", "data.root=/x"]`` applied to a raw config dict (in place, returned)."""
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set expects KEY=VALUE, got '{item}'")
        parts = key.strip().split(".")
        node = data
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = _parse_value(value)
    return data


def read_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    if path.suffix == ".toml":
        import tomllib

        return tomllib.loads(path.read_text())
    if path.suffix == ".json":
        return json.loads(path.read_text())
    raise ValueError(f"config {path}: use a .json or .toml file")


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read a ``.json`` / ``.toml`` training config, apply ``overrides`` and validate it."""
    return TrainConfig.from_dict(apply_overrides(read_config_file(path), overrides or []))
