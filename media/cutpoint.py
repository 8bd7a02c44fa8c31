"""Where to cut a clip that is longer than a profile allows: at a natural pause.

A source longer than `max_duration` (about one minute for Douyin / 视频号) is not chopped at
the 60th second in the middle of a word: the last `cut_window` seconds before the maximum
(52–60 s for a 60 s maximum) are analysed and the cut goes to

1. the quietest *sustained* moment of the audio — a pause between sentences (reason "quiet");
2. else the latest scene change (a hard cut between shots, reason "scene");
3. else the maximum itself (reason "hard limit").

The analysis is one run of the ffmpeg binary over the window only (`-ss window_start
-t window_len` before `-i`, so ffmpeg seeks and decodes just those seconds) with two
branches in one filter graph — no moviepy, no frames through Python:

* audio: mono 8 kHz, `asetnsamples` blocks of 0.1 s, `astats` RMS level per block,
  printed by `ametadata` (a dB value per 0.1 s; digital silence prints "-inf");
* video: scaled to 320 px wide, `scdet` prints a score (0–100, the mean luma difference to the
  previous frame in percent) for each frame at or above its threshold.

ffmpeg 9 did this for an 8 s window of 1080p in well under a second on 2 cores (../shared/DESIGN.md:
"`silencedetect` over 90 s took 0.24 s; `scdet` on a 320 px window 3 s: cheap enough to pick
the cut point every time").

The choice is made by pure functions (`parse_analysis`, `quiet_point`, `scene_point`,
`choose_cut`) that the tests drive with synthetic level lists, no ffmpeg needed.

Numbers and why:
* `BLOCK_SECONDS` 0.1 — fine enough to land inside a 0.3 s breath pause, coarse enough
  that one window is 80 numbers.
* A block is quiet when its RMS level is ≤ max(`QUIET_ABS_DB` −50 dBFS, loud − `QUIET_DROP_DB`
  20 dB), where loud is the window's 90th-percentile level: −50 dBFS is below any room tone
  a phone records next to a speaker; 20 dB under the loud part catches pauses in noisy
  street recordings. A window that is quiet throughout (loud < threshold +
  `MIN_CONTRAST_DB`) carries no information: the audio is ignored then.
* A pause must last `MIN_QUIET_SECONDS` 0.3 s (one breath); longer pauses are preferred up
  to `SUSTAINED_SECONDS` 1 s, then quieter ones, then later ones (a longer clip).
* The cut goes `min(pause/2, FADE_SECONDS)` into the pause: in the middle of a short pause,
  and for a long pause half a second in, so the 0.5 s fade-out the renderer applies before
  the cut ends on silence instead of swallowing the last word.
* `SCENE_MIN_SCORE` 10 — scdet's own default threshold; a cut between two shots scores
  15–60, camera motion stays under 5.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from media.ffmpeg import ffpath, run_ffmpeg

log = logging.getLogger(__name__)

BLOCK_SECONDS = 0.1
ANALYSIS_SAMPLE_RATE = 8000
QUIET_ABS_DB = -50.0
QUIET_DROP_DB = 20.0
MIN_CONTRAST_DB = 10.0
MIN_QUIET_SECONDS = 0.3
SUSTAINED_SECONDS = 1.0
FADE_SECONDS = 0.5
SCENE_MIN_SCORE = 10.0
SCENE_SCALE_WIDTH = 320
SILENCE_DB = -120.0  # what "-inf" (digital silence) counts as
ANALYSIS_TIMEOUT_BASE = 30.0
ANALYSIS_TIMEOUT_PER_SECOND = 2.0

QUIET, SCENE, HARD_LIMIT, EDITOR = "quiet", "scene", "hard limit", "editor"


@dataclass(frozen=True)
class CutDecision:
    """Where a clip ends (`at`, seconds in the source) and why (`reason`)."""

    at: float
    reason: str  # "quiet" | "scene" | "hard limit"


# --------------------------------------------------------------------------- pure helpers

_LINE_RE = re.compile(r"^\[Parsed_(ametadata|scdet)_\d+ @ [^\]]*\]\s*(.*)$")
_PTS_RE = re.compile(r"pts_time:\s*(-?\d+(?:\.\d+)?)")
_RMS_RE = re.compile(r"lavfi\.astats\.Overall\.RMS_level=(-?inf|-?nan|-?\d+(?:\.\d+)?)")
_SCD_RE = re.compile(r"lavfi\.scd\.score:\s*(-?\d+(?:\.\d+)?),\s*lavfi\.scd\.time:\s*(-?\d+(?:\.\d+)?)")


def parse_analysis(stderr: str, offset: float = 0.0) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(levels, scenes) from the analysis run's stderr, times shifted by `offset` (the window
    start, since ffmpeg's timestamps restart at 0 after an input seek).

    levels: [(block start, RMS dBFS)] ("-inf" → `SILENCE_DB`); scenes: [(time, score)].
    """
    levels: list[tuple[float, float]] = []
    scenes: list[tuple[float, float]] = []
    pending_t: float | None = None
    for raw in stderr.splitlines():
        m = _LINE_RE.match(raw.strip())
        if not m:
            continue
        kind, rest = m.groups()
        if kind == "scdet":
            sm = _SCD_RE.search(rest)
            if sm:
                scenes.append((round(float(sm.group(2)) + offset, 4), float(sm.group(1))))
            continue
        pm = _PTS_RE.search(rest)
        if pm:
            pending_t = float(pm.group(1))
            continue
        rm = _RMS_RE.search(rest)
        if rm and pending_t is not None:
            value = rm.group(1)
            db = float(value) if value[-3:] not in ("inf", "nan") else SILENCE_DB
            levels.append((round(pending_t + offset, 4), max(SILENCE_DB, db)))
            pending_t = None
    return levels, scenes


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


def quiet_threshold(levels_db: Sequence[float]) -> float | None:
    """The level (dBFS) at or below which a block counts as quiet; None when the window has
    no loud part to contrast with (silent or uniformly quiet audio)."""
    if not levels_db:
        return None
    loud = _percentile(levels_db, 0.9)
    threshold = max(QUIET_ABS_DB, loud - QUIET_DROP_DB)
    if loud < threshold + MIN_CONTRAST_DB:
        return None
    return threshold


def quiet_runs(levels: Sequence[tuple[float, float]], threshold: float,
               block: float = BLOCK_SECONDS) -> list[tuple[float, float, float]]:
    """Consecutive quiet blocks as (start, end, mean dBFS), in time order."""
    runs: list[tuple[float, float, float]] = []
    current: list[tuple[float, float]] = []
    for t, db in list(levels) + [(math.inf, math.inf)]:  # sentinel closes the last run
        contiguous = not current or t - current[-1][0] <= block * 1.5
        if db <= threshold and contiguous:
            current.append((t, db))
            continue
        if current:
            runs.append((current[0][0], current[-1][0] + block, sum(d for _, d in current) / len(current)))
        current = [(t, db)] if db <= threshold else []
    return runs


def quiet_point(levels: Sequence[tuple[float, float]], window_start: float, window_end: float, *,
                block: float = BLOCK_SECONDS) -> float | None:
    """The cut time inside the best sustained pause of the window, or None if there is none.

    Pauses shorter than `MIN_QUIET_SECONDS` do not count. Ranking: length (up to
    `SUSTAINED_SECONDS`), then quietness (10 dB steps), then lateness. The cut goes
    `min(length/2, FADE_SECONDS)` into the pause.
    """
    inside = [(t, db) for t, db in levels if window_start - 1e-6 <= t < window_end]
    threshold = quiet_threshold([db for _, db in inside])
    if threshold is None:
        return None
    best: tuple[tuple[float, float, float], float] | None = None
    for start, end, mean_db in quiet_runs(inside, threshold, block):
        end = min(end, window_end)
        length = end - start
        if length < MIN_QUIET_SECONDS - 1e-6:
            continue
        key = (round(min(length, SUSTAINED_SECONDS), 1), -math.floor(mean_db / 10), start)
        cut = start + min(length / 2, FADE_SECONDS)
        if best is None or key > best[0]:
            best = (key, cut)
    if best is None:
        return None
    return round(min(max(best[1], window_start), window_end), 3)


def scene_point(scenes: Sequence[tuple[float, float]], window_start: float, window_end: float, *,
                min_score: float = SCENE_MIN_SCORE) -> float | None:
    """The latest scene change inside the window scoring at least `min_score`, or None.

    The cut is at the first frame of the new shot (that frame is not kept).
    """
    found = [t for t, score in scenes if score >= min_score and window_start <= t <= window_end]
    return round(max(found), 3) if found else None


def choose_cut(levels: Sequence[tuple[float, float]], scenes: Sequence[tuple[float, float]],
               window_start: float, window_end: float) -> CutDecision:
    """Quietest sustained pause, else latest scene change, else the hard limit (`window_end`)."""
    at = quiet_point(levels, window_start, window_end)
    if at is not None:
        return CutDecision(at, QUIET)
    at = scene_point(scenes, window_start, window_end)
    if at is not None:
        return CutDecision(at, SCENE)
    return CutDecision(round(window_end, 3), HARD_LIMIT)


# --------------------------------------------------------------------------- ffmpeg


def analysis_args(src: str | Path, window_start: float, window_len: float, *, has_audio: bool) -> list[str]:
    """ffmpeg arguments for the one analysis pass over [window_start, window_start + window_len)."""
    block_samples = round(ANALYSIS_SAMPLE_RATE * BLOCK_SECONDS)
    args = ["-v", "info", "-ss", f"{window_start:.3f}", "-t", f"{window_len:.3f}", "-i", ffpath(src)]
    graph = [f"[0:v:0]scale={SCENE_SCALE_WIDTH}:-2:flags=fast_bilinear,scdet=threshold={SCENE_MIN_SCORE:g}[v]"]
    maps = ["-map", "[v]"]
    if has_audio:
        graph.append(
            f"[0:a:0]aformat=sample_fmts=flt:sample_rates={ANALYSIS_SAMPLE_RATE}:channel_layouts=mono,"
            f"asetnsamples=n={block_samples}:p=0,"
            "astats=metadata=1:reset=1:measure_perchannel=none:measure_overall=RMS_level,"
            "ametadata=mode=print:key=lavfi.astats.Overall.RMS_level[a]"
        )
        maps += ["-map", "[a]"]
    return [*args, "-filter_complex", ";".join(graph), *maps, "-f", "null", "-"]


def analyse_window(src: str | Path, window_start: float, window_end: float, *,
                   has_audio: bool) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Run the analysis pass; (levels, scenes) in source seconds."""
    length = max(0.0, window_end - window_start)
    proc = run_ffmpeg(analysis_args(src, window_start, length, has_audio=has_audio),
                      timeout=ANALYSIS_TIMEOUT_BASE + ANALYSIS_TIMEOUT_PER_SECOND * length, what="cut analysis")
    return parse_analysis(proc.stderr.decode("utf-8", "replace"), offset=window_start)


def find_cut(src: str | Path, window_start: float, window_end: float, *, has_audio: bool) -> CutDecision:
    """Analyse [window_start, window_end] of `src` and choose where the clip ends."""
    if window_end - window_start < BLOCK_SECONDS:
        return CutDecision(round(window_end, 3), HARD_LIMIT)
    levels, scenes = analyse_window(src, window_start, window_end, has_audio=has_audio)
    decision = choose_cut(levels, scenes, window_start, window_end)
    log.debug("cut window %.2f–%.2f s: %d level blocks, scenes %s → %s", window_start, window_end,
              len(levels), scenes, decision)
    return decision
