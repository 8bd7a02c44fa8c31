"""media.cutpoint: choosing a natural cut from sampled audio levels and scene scores.

The choosing functions are pure and tested with synthetic numbers; one test runs the real
analysis pass of ffmpeg over a small generated clip.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from media import cutpoint
from media.cutpoint import (
    HARD_LIMIT,
    QUIET,
    SCENE,
    SILENCE_DB,
    CutDecision,
    choose_cut,
    parse_analysis,
    quiet_point,
    quiet_runs,
    quiet_threshold,
    scene_point,
)
from media.ffmpeg import run_ffmpeg


def levels(start: float, values: list[float], step: float = 0.1) -> list[tuple[float, float]]:
    return [(round(start + i * step, 3), v) for i, v in enumerate(values)]


def speech_with_pause(start: float, n: int, pause_at: int, pause_len: int, quiet_db: float = -70.0,
                      loud_db: float = -20.0) -> list[tuple[float, float]]:
    return levels(start, [quiet_db if pause_at <= i < pause_at + pause_len else loud_db for i in range(n)])


def test_parse_analysis_reads_levels_and_scenes_with_offset():
    stderr = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'x.mp4':
[Parsed_ametadata_3 @ 0x7fda28004f40] frame:0    pts:0       pts_time:0
[Parsed_ametadata_3 @ 0x7fda28004f40] lavfi.astats.Overall.RMS_level=-21.011174
[Parsed_ametadata_3 @ 0x7fda28004f40] frame:1    pts:800     pts_time:0.1
[Parsed_ametadata_3 @ 0x7fda28004f40] lavfi.astats.Overall.RMS_level=-inf
[Parsed_scdet_5 @ 0x7fda28012840] lavfi.scd.score: 15.625, lavfi.scd.time: 2
[Parsed_ametadata_3 @ 0x7fda28004f40] frame:2    pts:1600    pts_time:0.2
[Parsed_ametadata_3 @ 0x7fda28004f40] lavfi.astats.Overall.RMS_level=-84.5
"""
    lv, sc = parse_analysis(stderr, offset=52.0)
    assert lv == [(52.0, pytest.approx(-21.011174)), (52.1, SILENCE_DB), (52.2, -84.5)]
    assert sc == [(54.0, 15.625)]


def test_threshold_is_relative_to_the_loud_part_and_absolute_floor():
    assert quiet_threshold([-20.0] * 9 + [-70.0]) == pytest.approx(-40.0)  # 20 dB under loud
    assert quiet_threshold([-35.0] * 9 + [-70.0]) == pytest.approx(-50.0)  # absolute floor
    assert quiet_threshold([SILENCE_DB] * 10) is None  # silent window: no information
    assert quiet_threshold([-45.0] * 10) is None  # uniformly quiet: no contrast
    assert quiet_threshold([]) is None


def test_quiet_runs_split_on_gaps():
    lv = levels(10.0, [-20, -70, -70, -20, -70, -70, -70])
    assert [(s, round(e, 3)) for s, e, _ in quiet_runs(lv, -40.0)] == [(10.1, 10.3), (10.4, 10.7)]


def test_quiet_point_in_the_middle_of_a_short_pause():
    lv = speech_with_pause(52.0, 80, pause_at=30, pause_len=4)  # 55.0–55.4
    assert quiet_point(lv, 52.0, 60.0) == pytest.approx(55.2)


def test_quiet_point_half_a_second_into_a_long_pause():
    lv = speech_with_pause(52.0, 80, pause_at=30, pause_len=25)  # 55.0–57.5
    assert quiet_point(lv, 52.0, 60.0) == pytest.approx(55.5)


def test_blips_shorter_than_a_breath_are_not_pauses():
    lv = speech_with_pause(52.0, 80, pause_at=30, pause_len=2)  # 0.2 s
    assert quiet_point(lv, 52.0, 60.0) is None
    assert choose_cut(lv, [], 52.0, 60.0) == CutDecision(60.0, HARD_LIMIT)


def test_sustained_pause_beats_a_quieter_short_one():
    values = [-20.0] * 80
    values[10:14] = [-90.0] * 4  # 0.4 s, very quiet, early
    values[40:52] = [-55.0] * 12  # 1.2 s, quiet enough
    assert quiet_point(levels(52.0, values), 52.0, 60.0) == pytest.approx(56.5)


def test_among_sustained_pauses_the_quieter_then_the_later_wins():
    values = [-20.0] * 80
    values[5:20] = [-80.0] * 15  # 1.5 s at -80
    values[50:65] = [-55.0] * 15  # 1.5 s at -55
    assert quiet_point(levels(52.0, values), 52.0, 60.0) == pytest.approx(53.0)
    values[50:65] = [-80.0] * 15
    assert quiet_point(levels(52.0, values), 52.0, 60.0) == pytest.approx(57.5)


def test_scene_point_takes_the_latest_strong_change():
    scenes = [(53.0, 40.0), (57.2, 22.0), (58.0, 4.0), (61.0, 80.0)]
    assert scene_point(scenes, 52.0, 60.0) == pytest.approx(57.2)
    assert scene_point([(58.0, 4.0)], 52.0, 60.0) is None


def test_choose_cut_prefers_quiet_then_scene_then_limit():
    pause = speech_with_pause(52.0, 80, pause_at=30, pause_len=6)
    loud = levels(52.0, [-20.0] * 80)
    scenes = [(57.2, 30.0)]
    assert choose_cut(pause, scenes, 52.0, 60.0) == CutDecision(pytest.approx(55.3), QUIET)
    assert choose_cut(loud, scenes, 52.0, 60.0) == CutDecision(57.2, SCENE)
    assert choose_cut(loud, [], 52.0, 60.0) == CutDecision(60.0, HARD_LIMIT)
    assert choose_cut([], [], 52.0, 60.0) == CutDecision(60.0, HARD_LIMIT)  # no audio at all


def test_a_silent_track_falls_back_to_scenes():
    silent = levels(52.0, [SILENCE_DB] * 80)
    assert choose_cut(silent, [(55.0, 50.0)], 52.0, 60.0) == CutDecision(55.0, SCENE)


def test_analysis_pass_on_a_real_clip(tmp_path: Path):
    """Tone with a gap at 2.0–2.6 s; a cut from red to blue at 3.0 s; window 1–5 s."""
    src = tmp_path / "s.mp4"
    run_ffmpeg(["-v", "error", "-y", "-f", "lavfi", "-i", "color=c=red:s=160x90:r=25:d=3",
                "-f", "lavfi", "-i", "color=c=blue:s=160x90:r=25:d=3",
                "-f", "lavfi", "-i", "sine=f=440:d=6,volume=enable='between(t,2,2.6)':volume=0",
                "-filter_complex", "[0][1]concat=n=2:v=1:a=0[v]", "-map", "[v]", "-map", "2:a",
                "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(src)],
               timeout=60)
    lv, scenes = cutpoint.analyse_window(src, 1.0, 5.0, has_audio=True)
    assert lv[0][0] == pytest.approx(1.0) and lv[-1][0] == pytest.approx(4.9)
    quiet = [t for t, db in lv if db < -60]
    assert quiet and 1.95 <= min(quiet) and max(quiet) <= 2.65
    assert [t for t, _ in scenes] == [pytest.approx(3.0)]
    assert cutpoint.find_cut(src, 1.0, 5.0, has_audio=True) == CutDecision(pytest.approx(2.3, abs=0.15), QUIET)
    assert cutpoint.find_cut(src, 2.7, 5.0, has_audio=True) == CutDecision(pytest.approx(3.0), SCENE)
    assert cutpoint.find_cut(src, 3.5, 5.0, has_audio=False) == CutDecision(5.0, HARD_LIMIT)
