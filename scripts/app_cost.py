"""What tracking from the page costs against ``python -m chrono.track`` on the same clip (docs/app.md).

Makes a 250-frame 854 x 480 synthetic mp4 and a tiny-backbone checkpoint (random weights: speed only), then

1. runs ``python -m chrono.track video=clip.mp4 checkpoint=tiny.ckpt queries=4`` (a 4 x 4 grid on frame 0,
   the default windows) under /usr/bin/time: wall seconds and peak RSS of the whole process;
2. starts ``python -m chrono.app`` with the same checkpoint, drives it in headless Chromium (open the clip by
   its server path, a 4 x 4 grid on frame 0, Track; then remove a point and Track again) and reads the
   server's resident memory (VmRSS before, VmHWM after) from /proc;
3. runs chrono.track once more, so that the page's figures sit between two of the command's under the same
   machine load.

    python scripts/app_cost.py [--frames 250] [--out outputs/app_cost]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def make_inputs(out: Path, frames: int) -> tuple[Path, Path]:
    import torch

    from chrono.checkpoint import build_tracker, tracker_checkpoint
    from chrono.data.synthetic import generate_clip
    from chrono.video_io import Mp4Writer

    clip, ckpt = out / "clip.mp4", out / "tiny.ckpt"
    if not clip.is_file():
        video = generate_clip(0, height=480, width=854, num_frames=frames, num_tracks=16, num_objects=3)["video"]
        with Mp4Writer(clip, fps=25, crf=18) as writer:
            for frame in video:
                writer.write(frame)
    if not ckpt.is_file():
        torch.manual_seed(0)
        torch.save(tracker_checkpoint(build_tracker("tiny", input_size=224)), ckpt)
    return clip, ckpt


def run_command(clip: Path, ckpt: Path, out: Path) -> dict:
    cmd = ["/usr/bin/time", "-f", "TIME %e %M", sys.executable, "-m", "chrono.track", f"video={clip}",
           f"checkpoint={ckpt}", "queries=4", f"out={out}", "progress=false"]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    wall, rss_kb = re.search(r"TIME (\S+) (\d+)", res.stderr).groups()
    return {"wall_s": float(wall), "peak_rss_mb": int(rss_kb) / 1024}


def status_mb(pid: int, field: str) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_page(clip: Path, ckpt: Path, out: Path) -> dict:
    from playwright.sync_api import sync_playwright

    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    server = subprocess.Popen([sys.executable, "-m", "chrono.app", f"port={port}", f"checkpoint={ckpt}", f"out={out}"],
                              stderr=subprocess.PIPE, text=True, env=env)
    figures = {}
    try:
        for line in server.stderr:
            if "serving on" in line:
                break
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
            pg = browser.new_page(viewport={"width": 1400, "height": 1100})
            pg.set_default_timeout(600_000)
            pg.goto(f"http://127.0.0.1:{port}/")
            pg.fill("#server_path textarea", str(clip))
            pg.click("#open_path")
            pg.wait_for_function("() => document.querySelector('#status').innerText.includes('Opened')")
            pg.fill("#grid_n input", "4")
            pg.click("#grid")
            pg.wait_for_function("() => document.querySelector('#npoints').innerText.includes('16 points')")
            figures["rss_before_track_mb"] = status_mb(server.pid, "VmRSS")
            for name, expect in (("track", "Tracked 16 points"), ("retrack", "Tracked 15 points")):
                if name == "retrack":
                    pg.fill("#remove_id input", "3")
                    pg.click("#remove")
                    pg.wait_for_function("() => document.querySelector('#npoints').innerText.includes('15 points')")
                t0 = time.perf_counter()
                pg.click("#track")
                pg.wait_for_function("t => document.querySelector('#status').innerText.includes(t)", arg=expect)
                figures[f"{name}_click_to_result_s"] = time.perf_counter() - t0
                text = pg.inner_text("#status")
                figures[f"{name}_server_s"] = float(re.search(r"in ([\d.]+) s", text).group(1))
                figures[f"{name}_status"] = text.strip()
            figures["peak_rss_mb"] = status_mb(server.pid, "VmHWM")
            browser.close()
    finally:
        server.terminate()
        server.communicate(timeout=30)
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=250)
    ap.add_argument("--out", type=Path, default=Path("outputs/app_cost"))
    args = ap.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    clip, ckpt = make_inputs(out, args.frames)
    report = {"frames": args.frames, "size": "854x480", "backbone": "tiny (input 224)", "queries": "4 x 4 grid, frame 0",
              "windows": "default (48 / 16)", "load_average": os.getloadavg()}
    report["command_1"] = run_command(clip, ckpt, out / "track1")
    report["page"] = run_page(clip, ckpt, out / "page")
    report["command_2"] = run_command(clip, ckpt, out / "track2")
    print(json.dumps(report, indent=1))
    (out / "report.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
