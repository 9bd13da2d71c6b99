"""The turns protocol: frame choice, summary, and the measured ratio on cases with known answers."""

import pytest

from core.eval.turns import TurnRunner, measure_turn, pick_turns, summarise_turns, turns_table


def _pose(yaw, pitch):
    return {"yaw": yaw, "pitch": pitch, "roll": 0.0}


def test_pick_turns_takes_the_most_frontal_frame_and_the_furthest_turn_each_way():
    poses = {0: _pose(8, 1), 3: _pose(1, -2), 5: _pose(20, 0), 7: _pose(-6, 15), 9: _pose(14, -9)}
    source, turns = pick_turns(poses, min_change=12.0)
    assert source == 3
    assert (("yaw", 1, 5) in turns) and (("pitch", 1, 7) in turns)
    # yaw -7 and pitch -7 from the source are below the 12 degrees asked for
    assert not any(t[:2] in (("yaw", -1), ("pitch", -1)) for t in turns)
    assert pick_turns(poses, min_change=30.0)[1] == []


def test_summary_means_and_table():
    rows = [
        {"control": "yaw", "real": 20.0, "render": 16.0, "ratio": 0.8, "id_real": 0.4, "id_render": 0.3},
        {"control": "yaw", "real": -10.0, "render": -9.0, "ratio": 0.9, "id_real": 0.2, "id_render": float("nan")},
        {"control": "pitch", "real": 15.0, "render": 9.0, "ratio": 0.6},  # no face for dlib: no identity
    ]
    s = summarise_turns(rows, "geometry")["controls"]
    expected = {"n": 2, "real": 15.0, "render": 12.5, "ratio": 0.85, "id_real": 0.3, "id_render": 0.3}
    assert s["yaw"] == pytest.approx(expected)
    assert s["pitch"]["id_real"] is None and s["all"]["id_real"] == pytest.approx(0.3)
    assert s["pitch"]["n"] == 1 and s["all"]["n"] == 3 and s["all"]["ratio"] == pytest.approx(2.3 / 3)
    empty = summarise_turns([], "geometry")["controls"]["yaw"]
    assert empty == {"n": 0, "real": None, "render": None, "ratio": None, "id_real": None, "id_render": None}
    table = turns_table(summarise_turns(rows, "geometry"))
    assert "| yaw | 2 | 15.0 | 12.5 | 0.850 | 0.300 | 0.300 |" in table and "| pitch | 1 |" in table
    assert "| 0.600 | - | - |" in table


def test_a_still_render_reads_no_turn_and_a_turned_render_reads_most_of_it(samples, ict_model, analyser, dlib_faces):
    """The "real" turned frame here is the geometry engine's own 20 degree turn of a sample portrait: the copy
    engine (which returns the source unchanged) must read as not turning at all, and the geometry engine,
    asked for the same fitted change again, must read as turning most of it."""
    from core.engines.registry import make_engine
    from core.io.image import load_image

    path = samples / "images" / "assets__examples__source__s1.jpg"
    if not path.is_file():
        pytest.skip(f"sample portrait {path.name} absent")
    geometry = TurnRunner(make_engine("geometry", ict_model), ict_model, analyser.detector, faces=dlib_faces)
    source = geometry.prepare(geometry.fit(load_image(path), "source"))
    turned = geometry.render_turn(source, {"yaw": 20.0, "pitch": 0.0, "roll": 0.0})

    (row,) = measure_turn(geometry, "s1", source, turned, "yaw", 1, (0, 1), "geometry")
    assert 12.0 < row["real"] < 24.0  # the refit reads the 20 degree render as a turn of about that much
    assert 0.6 < row["ratio"] < 1.15 and row["render"] == pytest.approx(row["ratio"] * row["real"])
    # both are this engine's 20 degree turns of the same face: as far from the source's identity as each other
    assert 0.1 < row["id_real"] < 0.5 and abs(row["id_render"] - row["id_real"]) < 0.1
    id_turned = row["id_real"]

    still = TurnRunner(make_engine("copy", ict_model), ict_model, analyser.detector, faces=dlib_faces)
    (row,) = measure_turn(still, "s1", still.prepare(source.fit), turned, "yaw", 1, (0, 1), "copy")
    assert abs(row["ratio"]) < 0.15
    assert row["id_real"] == pytest.approx(id_turned) and row["id_render"] < 0.3 * id_turned  # the source itself
