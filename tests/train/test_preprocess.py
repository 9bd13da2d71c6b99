"""Preprocessing: sharding, and one real sample clip end to end (fit, crop, write, resume)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.train.preprocess import list_videos, parse_shard, preprocess_dir, select_shard


def test_shards_partition_the_list():
    items = [Path(f"v{i}.mp4") for i in range(10)]
    parts = [select_shard(items, parse_shard(f"{i}/3")) for i in range(3)]
    assert sorted(sum(parts, [])) == sorted(items) and all(parts)
    assert parse_shard(None) == (0, 1)
    for bad in ("3/3", "a/b", "1"):
        with pytest.raises(ValueError):
            parse_shard(bad)


@pytest.mark.slow
def test_preprocess_sample_clip(tmp_path):
    from core.assets import samples_dir

    root = samples_dir()
    videos = sorted((root / "videos").glob("*.mp4")) if root else []
    if not videos:
        pytest.skip("no sample videos")
    src = tmp_path / "videos" / "person0"
    src.mkdir(parents=True)
    (src / "clip.mp4").symlink_to(videos[0])
    out = tmp_path / "clips"
    counts = preprocess_dir(tmp_path / "videos", out, size=64, max_frames=6, progress=False)
    assert counts == {"done": 1, "skipped": 0, "failed": 0}
    clip = out / "person0" / "clip"
    meta = json.loads((clip / "meta.json").read_text())
    assert meta["frames"] == 6 and meta["size"] == 64 and meta["num_vertices"] == 26719
    verts = np.load(clip / "vertices.npy")
    assert verts.dtype == np.float16 and verts.shape == (6, 26719, 3)
    assert len(list((clip / "frames").glob("*.jpg"))) == 6
    # the face lies in the crop
    assert 0 < np.median(verts[..., 0]) < 64 and 0 < np.median(verts[..., 1]) < 64
    # resumable: a second run skips it
    assert preprocess_dir(tmp_path / "videos", out, size=64, max_frames=6, progress=False)["skipped"] == 1
    assert list_videos(tmp_path / "videos") == [src / "clip.mp4"]
