"""``python -m core export-weights SRC OUT_DIR``: turn a run's engine export into the files one ships.

The trainer refreshes ``pwm.json`` + ``pwm.safetensors`` in its ``out_dir`` at every checkpoint (float32,
spectral norm not folded, so that ``--init-weights`` can continue from them). Shipping them means: check them
as the engine would (``core.engines.pwm.read_weights``), store the floating-point tensors in half precision
(the model card says how far that moves an output image), and record where they came from. The result loads
everywhere the float32 export does, the engine and ``--init-weights`` included: ``load_state_dict`` casts the
tensors back to the model's float32.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

__all__ = ["DTYPES", "export_for_shipping"]

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def _meta_path(src: str | Path, name: str) -> Path:
    p = Path(src).expanduser()
    return p if p.suffix == ".json" else p / f"{name}.json"


def export_for_shipping(
    src: str | Path,
    out_dir: str | Path,
    dtype: str = "float16",
    name: str = "pwm",
    note: dict | None = None,
    alpha_scale: float | None = None,
) -> dict[str, Any]:
    """Read ``src`` (a ``pwm.json`` or its folder), write ``<name>.safetensors`` with floating tensors in
    ``dtype`` and ``<name>.json`` (the source's config plus ``dtype``, ``exported_from``, ``note`` and, when
    given, the engine's blend calibration ``alpha_scale``) into ``out_dir``, atomically. Returns the written
    JSON. ``PWMWeightsError`` for an unreadable or foreign source, ``ValueError`` for an unknown dtype or an
    ``alpha_scale`` outside [0, 1]."""
    from safetensors.torch import save_file

    from core.engines.pwm import read_weights
    from core.model import check_alpha_scale
    from core.train.trainer import EXPORT_FORMAT

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if alpha_scale is not None:
        alpha_scale = check_alpha_scale(alpha_scale)
    meta_path = _meta_path(src, name)
    _, state, meta = read_weights(meta_path)
    target = DTYPES[dtype]
    state = {k: (v.to(target) if v.is_floating_point() else v).contiguous() for k, v in state.items()}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / f"{name}.safetensors"
    tmp = out_dir / f".{name}.safetensors.tmp{os.getpid()}"
    save_file(state, str(tmp), metadata={"format": EXPORT_FORMAT, "dtype": dtype})
    os.replace(tmp, weights)
    out = {**meta, "weights": weights.name, "dtype": dtype, "exported_from": str(meta_path)}
    if alpha_scale is not None:
        out["alpha_scale"] = alpha_scale
    if note:
        out["note"] = note
    tmp_json = out_dir / f".{name}.json.tmp{os.getpid()}"
    tmp_json.write_text(json.dumps(out, indent=1) + "\n")
    os.replace(tmp_json, out_dir / f"{name}.json")
    return out
