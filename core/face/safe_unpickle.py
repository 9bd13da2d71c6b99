"""A restricted unpickler for FLAME's ``generic_model.pkl`` (and similar research pickles).

Plain ``pickle.load`` runs whatever code a file names. This unpickler resolves only an allow-list of
names: numpy's array and dtype reconstruction, ``_codecs.encode`` (bytes in protocol 2),
``copyreg._reconstructor`` for plain objects, and stand-ins for chumpy arrays and scipy sparse matrices
(chumpy is never imported; the stand-ins keep the stored state and turn it into numpy arrays). Any other
global (``os.system``, ``builtins.eval``, ...) raises ``UnsafePickleError`` before anything runs.
"""

from __future__ import annotations

import codecs
import copyreg
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list."""


class ChumpyStandIn:
    """Holds the pickled state of a ``chumpy`` object; ``array()`` gives its value as numpy."""

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def array(self) -> np.ndarray:
        state = self.state
        if isinstance(state, dict):
            for key in ("x", "a", "r"):
                if key in state and isinstance(state[key], (np.ndarray, ChumpyStandIn, list, float, int)):
                    return to_numpy(state[key])
            arrays = [v for v in state.values() if isinstance(v, np.ndarray)]
            if len(arrays) == 1:
                return arrays[0]
        raise ValueError("cannot read the value of a pickled chumpy object")


class SparseStandIn:
    """Holds the pickled state of a ``scipy.sparse`` CSC/CSR matrix; ``array()`` densifies it."""

    layout = "csc"

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def array(self) -> np.ndarray:
        s = self.state
        shape = tuple(s.get("_shape") or s.get("shape"))
        data, indices, indptr = (np.asarray(s[k]) for k in ("data", "indices", "indptr"))
        dense = np.zeros(shape, dtype=data.dtype)
        outer = shape[1] if self.layout == "csc" else shape[0]
        for j in range(outer):
            lo, hi = indptr[j], indptr[j + 1]
            if self.layout == "csc":
                dense[indices[lo:hi], j] = data[lo:hi]
            else:
                dense[j, indices[lo:hi]] = data[lo:hi]
        return dense


class CsrStandIn(SparseStandIn):
    layout = "csr"


_STAND_INS: tuple[type, ...] = (ChumpyStandIn, SparseStandIn, CsrStandIn)


def _safe_reconstructor(cls: type, base: type, state: Any) -> Any:
    """``copyreg._reconstructor`` limited to our stand-ins built on ``object``."""
    if cls not in _STAND_INS or base is not object or state is not None:
        raise UnsafePickleError(f"refused to reconstruct {cls!r} on {base!r}")
    return copyreg._reconstructor(cls, base, state)


_NUMPY_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_ALLOWED:
            return getattr(np.core.multiarray, name) if name in ("_reconstruct", "scalar") else getattr(np, name)
        if module in ("copy_reg", "copyreg") and name == "_reconstructor":
            return _safe_reconstructor
        if module in ("__builtin__", "builtins") and name == "object":
            return object
        if module == "_codecs" and name == "encode":  # how protocol 2 stores bytes (array buffers)
            return codecs.encode
        if module == "chumpy" or module.startswith("chumpy."):
            return ChumpyStandIn
        if module.startswith("scipy.sparse") and name in ("csc_matrix", "csr_matrix"):
            return SparseStandIn if name == "csc_matrix" else CsrStandIn
        raise UnsafePickleError(
            f"refused to load '{module}.{name}': the file names code outside the "
            "allow-list (numpy arrays, chumpy and scipy sparse data), so it was not "
            "unpickled"
        )


def to_numpy(value: Any) -> np.ndarray:
    """A loaded value (array, stand-in, list) as a numpy array."""
    if isinstance(value, _STAND_INS):
        return value.array()
    return np.asarray(value)


def safe_load(path: str | Path) -> Any:
    """Load a (Python 2 or 3) pickle with ``RestrictedUnpickler``; raises ``UnsafePickleError``."""
    data = Path(path).read_bytes()
    return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
