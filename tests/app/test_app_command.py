"""``python -m chrono.app``: conf/app.yaml composes into the page's settings; the command serves and stops."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

import pytest

from chrono.cli import compose
from chrono.errors import ConfigError
from chrono.interactive.settings import AppSettings


def test_config_composes_into_settings():
    settings = AppSettings.from_config(compose("app", ["tracker.input_size=448", "port=8000"]))
    assert settings.host == "127.0.0.1" and not settings.exposed and settings.port == 8000
    assert settings.tracker_overrides == {"input_size": 448} and settings.resolution == (256, 256)
    assert AppSettings.from_config(compose("app", ["host=0.0.0.0"])).exposed
    with pytest.raises(ConfigError, match="port=0"):
        AppSettings.from_config(compose("app", ["port=0"]))
    with pytest.raises(ConfigError, match="max_frames=0"):
        AppSettings.from_config(compose("app", ["max_frames=0"]))
    cfg = dict(compose("app"))
    del cfg["max_points"]
    with pytest.raises(ConfigError, match="max_points"):
        AppSettings.from_config(cfg)


def test_a_bad_setting_is_one_line_and_exit_code_2():
    res = subprocess.run([sys.executable, "-m", "chrono.app", "port=70000"], capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.strip().splitlines()[-1] == (
        "chrono.app: error: port=70000: not a TCP port")


@pytest.mark.slow
def test_the_command_serves_the_page_on_localhost(tmp_path, tiny_checkpoint, free_port):
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen([sys.executable, "-m", "chrono.app", f"port={port}", f"checkpoint={tiny_checkpoint}",
                             f"out={tmp_path}"], stderr=subprocess.PIPE, text=True, env=env)
    try:
        said = []
        for line in proc.stderr:  # the server says where it listens once it does (EOF if it dies)
            said.append(line)
            if "serving on" in line:
                break
        assert said and said[-1].strip() == f"chrono.app: serving on http://127.0.0.1:{port}/ (Ctrl-C stops)", said
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30).read().decode()
        assert "Chrono point tracking" in page
    finally:
        proc.terminate()  # this test's own server, by its pid
        proc.communicate(timeout=30)
