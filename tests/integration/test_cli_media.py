"""`fanout media …` as a person runs it: JSON on stdout, one `error:` line and exit 1 on bad input."""

from __future__ import annotations

import json

from media import probe
from tests.helpers import jpeg, video
from tests.integration.test_cli import fanout


def test_profiles_are_listed_with_their_numbers():
    listed = json.loads(fanout("media", "profiles", "--json").stdout)["profiles"]
    by_name = {p["name"]: p for p in listed}
    assert {"web_video", "wechat_cover", "weibo_image", "douyin_video", "channels_video"} <= set(by_name)
    assert (by_name["wechat_cover"]["width"], by_name["wechat_cover"]["height"]) == (900, 383)
    assert by_name["douyin_video"]["max_duration"] == 60
    text = fanout("media", "profiles").stdout
    assert "douyin_video" in text and "version=" in text


def test_probe_tells_what_a_file_is_or_why_it_is_refused(tmp_path):
    photo = jpeg(tmp_path / "photo.jpg")
    info = json.loads(fanout("media", "probe", str(photo)).stdout)
    assert (info["kind"], info["mime"], len(info["sha256"])) == ("image", "image/jpeg", 64)
    liar = tmp_path / "notes.jpg"
    liar.write_text("这不是图片", encoding="utf-8")
    refused = fanout("media", "probe", str(liar))
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("error: notes.jpg: ") and len(refused.stderr.strip().splitlines()) == 1
    missing = fanout("media", "probe", str(tmp_path / "nope.mp4"))
    assert missing.returncode == 1 and "not a file" in missing.stderr


def test_image_and_video_renditions_print_a_json_summary(tmp_path):
    photo = jpeg(tmp_path / "photo.jpg")
    out = tmp_path / "cover.jpg"
    made = json.loads(fanout("media", "image", str(photo), "-p", "wechat_cover", "-o", str(out)).stdout)
    assert (made["width"], made["height"], made["bytes"]) == (900, 383, out.stat().st_size)
    wrong = fanout("media", "image", str(photo), "-p", "web_video", "-o", str(out))
    assert wrong.returncode == 1 and "fanout media video" in wrong.stderr

    clip = video(tmp_path / "clip.mp4", seconds=4)
    vertical = tmp_path / "douyin.mp4"
    summary = json.loads(fanout("media", "video", str(clip), "-p", "douyin_video", "-o", str(vertical),
                                "--in", "1", "--out", "3", "--label", "群众满意度提升行动之基础教育篇",
                                timeout=300).stdout)
    assert (summary["width"], summary["height"]) == (1080, 1920) and summary["video_codec"] == "h264"
    assert abs(summary["duration"] - 2.0) < 0.15 and summary["has_audio"]
    written = probe(vertical)
    assert (written.width, written.height) == (1080, 1920)
    unknown = fanout("media", "video", str(clip), "-p", "tiktok_video", "-o", str(vertical))
    assert unknown.returncode == 1 and "unknown media profile" in unknown.stderr


def test_video_render_draws_a_progress_bar_on_a_terminal_only(tmp_path):
    """stderr a terminal (a pty): a bar fed by ffmpeg's own progress reaches 100%; stdout stays
    pure JSON. The same command with stderr a pipe (above) prints no bar."""
    import os
    import pty
    import subprocess
    import sys

    clip = video(tmp_path / "clip.mp4", seconds=4)
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "services.cli", "media", "video", str(clip), "-p", "web_video",
                             "-o", str(tmp_path / "web.mp4")], stdout=subprocess.PIPE, stderr=slave,
                            env=dict(os.environ))
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    stdout, _ = proc.communicate(timeout=300)
    os.close(master)
    assert proc.returncode == 0
    assert json.loads(stdout)["profile"] == "web_video"
    text = seen.decode("utf-8", "replace")
    assert "rendering web_video: [" in text and "100%" in text, text
    shares = [int(s) for s in __import__("re").findall(r"\]\s+(\d+)%", text)]
    assert shares == sorted(shares) and shares[-1] == 100
