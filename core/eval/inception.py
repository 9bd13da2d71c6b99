"""FID with Inception-v3: status and hook.

Standard FID uses the TF-ported Inception-v3 weights of ``pytorch-fid`` (``pt_inception-2015-12-05-6726825d.pth``)
and its Inception network. torchvision cannot be imported beside this torch, and this version has no
pure-PyTorch Inception-v3, so FID is **not available**: ``inception_status`` says why (and whether a weights
file was found or given), and the evaluation reports ``fd_dlib``, the same Fréchet distance on dlib's
face-recognition embeddings, instead. ``--inception-weights PATH`` is accepted so scripts keep working when
the network is added; for now it only changes the message. Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"


def find_inception_weights() -> Path | None:
    """The pytorch-fid Inception weights if they are already on disk (torch hub's checkpoint cache)."""
    import torch.hub

    path = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    return path if path.is_file() else None


def inception_status(weights: str | Path | None = None) -> tuple[bool, str]:
    """(available, one line for the report). Always unavailable in this version; the line says why."""
    if weights is not None:
        w = Path(weights)
        if not w.is_file():
            return False, f"FID (Inception-v3): not available: {w}: no such file"
        return False, (
            f"FID (Inception-v3): not available: weights {w} given, but this version has no "
            "pure-PyTorch Inception-v3 to load them into (torchvision is unusable beside this "
            "torch); fd_dlib (Frechet distance of dlib face embeddings) is reported instead"
        )
    found = find_inception_weights()
    if found is not None:
        return False, (
            f"FID (Inception-v3): not available: weights found at {found}, but this version has no "
            "pure-PyTorch Inception-v3; fd_dlib is reported instead"
        )
    return False, (
        "FID (Inception-v3): not available: no Inception weights on disk and torchvision is "
        "unusable here (--inception-weights is a hook, unsupported in this version); fd_dlib "
        "(Frechet distance of dlib face embeddings) is reported instead"
    )
