"""Imported by the benchmarks: point ``GDPW_SAMPLES`` at the development checkout's ``../shared/samples``
when it is unset and that folder exists (the package itself never looks beside the checkout)."""

import os
from pathlib import Path

_DEV = Path(__file__).resolve().parent.parent.parent / "shared" / "samples"
if "GDPW_SAMPLES" not in os.environ and _DEV.is_dir():
    os.environ["GDPW_SAMPLES"] = str(_DEV)
