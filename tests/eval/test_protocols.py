"""Pair sampling, identities, targets and engines of the protocols (no media needed)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from core.engines.copy import CopyEngine
from core.engines.registry import make_engine
from core.eval.protocols import (
    Clip,
    candidate_frames,
    find_clips,
    keep_identities,
    read_manifest,
    sample_pairs,
    target_params,
)
from core.face.params import FaceParams

CLIPS = [
    Clip(Path(f"/clips/{name}.mp4"), ident)
    for name, ident in [("a1", "alice"), ("a2", "alice"), ("b1", "bob"), ("c1", "carol"), ("c2", "carol")]
]


def count(clip: Clip) -> int:
    return 100


def test_candidate_frames():
    assert candidate_frames(100, 5).tolist() == [0, 25, 50, 74, 99]
    assert candidate_frames(3, 10).tolist() == [0, 1, 2]
    assert candidate_frames(0, 10).tolist() == []


def test_same_id_pairs_go_both_ways_and_are_reproducible():
    pairs = sample_pairs(CLIPS, "same-id", 7, frames_per_clip=10, seed=3, count_frames=count)
    assert len(pairs) == 7
    assert pairs == sample_pairs(CLIPS, "same-id", 7, frames_per_clip=10, seed=3, count_frames=count)
    assert pairs != sample_pairs(CLIPS, "same-id", 7, frames_per_clip=10, seed=4, count_frames=count)
    cand = set(candidate_frames(100, 10).tolist())
    for fwd, bwd in zip(pairs[0::2], pairs[1::2]):
        assert (fwd.direction, bwd.direction) == ("forward", "backward") and fwd.index == bwd.index
        assert fwd.source == bwd.driving and fwd.driving == bwd.source
        assert fwd.source.clip == fwd.driving.clip and fwd.source.frame != fwd.driving.frame
        assert {fwd.source.frame, fwd.driving.frame} <= cand
    assert pairs[-1].direction == "forward"  # odd count: the last pair one way only
    assert len({p.source.clip for p in pairs}) == 4  # one frame pair per clip, clip after clip


def test_max_clips_limits_the_clips_used():
    pairs = sample_pairs(CLIPS, "same-id", 12, seed=0, max_clips=2, count_frames=count)
    assert len({p.source.clip for p in pairs}) == 2


def test_cross_id_pairs_have_different_identities():
    pairs = sample_pairs(CLIPS, "cross-id", 20, seed=0, count_frames=count)
    assert len(pairs) == 20 and all(p.direction == "cross" for p in pairs)
    assert all(p.source.clip.identity != p.driving.clip.identity for p in pairs)
    with pytest.raises(ValueError, match="two identities"):
        sample_pairs(CLIPS[:2], "cross-id", 4, count_frames=count)


def test_bad_arguments():
    with pytest.raises(ValueError, match="protocol"):
        sample_pairs(CLIPS, "same-person", 4, count_frames=count)
    with pytest.raises(ValueError, match="pairs"):
        sample_pairs(CLIPS, "same-id", 0, count_frames=count)
    with pytest.raises(ValueError, match="at least two frames"):
        sample_pairs(CLIPS, "same-id", 2, count_frames=lambda c: 1)


def test_identities_from_a_manifest(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("x.mp4", "y.mp4", "z.mp4", "notes.txt"):
        (videos / name).write_bytes(b"")
    assert [c.identity for c in find_clips(videos)] == ["x", "y", "z"]  # no manifest: one identity per file
    (tmp_path / "MANIFEST.csv").write_text("file,identity,kind\nvideos/x.mp4,ann,video\nvideos/y.mp4,ann,video\n")
    assert [c.identity for c in find_clips(videos)] == ["ann", "ann", "z"]
    assert read_manifest(tmp_path / "MANIFEST.csv")["x.mp4"] == "ann"
    with pytest.raises(FileNotFoundError):
        find_clips(tmp_path / "missing")


def test_held_out_identities_by_clip_stem(tmp_path):
    """A training run's identity table names clips without their extension; evaluation can keep just the
    held-out identities and names the known ones for a typo."""
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("x.mp4", "y.mp4", "z.mp4"):
        (videos / name).write_bytes(b"")
    table = tmp_path / "ids.csv"
    table.write_text("file,identity\nx,ann\ny,bob\nz,ann\n")
    clips = find_clips(videos, table)
    assert [c.identity for c in clips] == ["ann", "bob", "ann"]
    assert [c.name for c in keep_identities(clips, ["ann"])] == ["x", "z"]
    with pytest.raises(ValueError, match="known: ann, bob"):
        keep_identities(clips, ["ann", "carl"])


def _params(value: float) -> FaceParams:
    p = FaceParams.zeros(1, 4, 53, (1.0, 0.0, 0.0))
    for name in ("shape", "expression", "head", "neck", "jaw", "gaze", "camera"):
        getattr(p, name).fill_(value)
    return p


def test_targets():
    src, drv = _params(1.0), _params(2.0)
    same = target_params(src, drv, "same-id")
    assert torch.equal(same.shape, drv.shape) and torch.equal(same.head, drv.head)
    cross = target_params(src, drv, "cross-id")
    assert torch.equal(cross.shape, src.shape)  # the source's identity ...
    for name in ("expression", "head", "neck", "jaw", "gaze"):  # ... moved like the driving frame
        assert torch.equal(getattr(cross, name), getattr(drv, name))
    assert torch.equal(cross.camera, src.camera)  # ... framed like the source (the Animator's absolute mode)


def test_copy_engine_and_unknown_engines(tmp_path):
    crop = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    engine = CopyEngine()
    out = engine.render(engine.prepare(crop, _params(0.0)), FaceParams.cat([_params(0.0)] * 3)).images
    assert out.shape == (3, 32, 32, 3) and all(np.array_equal(o, crop) for o in out)
    with pytest.raises(ValueError, match="pwm"):
        make_engine("pwm", None, weights=tmp_path)  # no weights there (or no pwm engine at all)
    with pytest.raises(ValueError, match="unknown engine"):
        make_engine("fomm", None)
