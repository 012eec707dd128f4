"""Helpers of the page's tests: settings composed from conf/app.yaml, and the page served in this process."""

from __future__ import annotations

import os
import socket

import pytest

# Before Gradio is imported anywhere in the test process: no version check, no telemetry.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

# The window plan of every page test: 16 demo frames in windows of 8 sharing 4 -> 3 windows.
WINDOW, OVERLAP, DEMO_FRAMES = 8, 4, 16


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(name="free_port")
def free_port_fixture():
    """:func:`free_port` (test folders are not packages: helpers reach tests through fixtures)."""
    return free_port


@pytest.fixture(scope="session")
def compose_settings(tiny_checkpoint):
    """``compose_settings(out, **overrides)``: AppSettings from conf/app.yaml with the tiny checkpoint, a
    short demo clip, small windows, a free port and outputs under ``out``."""
    from chrono.cli import compose
    from chrono.interactive.settings import AppSettings

    def settings(out, **overrides):
        values = dict(checkpoint=str(tiny_checkpoint), out=str(out), demo_frames=DEMO_FRAMES, window=WINDOW,
                      overlap=OVERLAP, port=free_port(), device="cpu", max_frames=20)
        values.update(overrides)
        cfg = compose("app", [f"{k}={'null' if v is None else v}" for k, v in values.items()])
        return AppSettings.from_config(cfg)

    return settings


@pytest.fixture
def app_settings(tmp_path, compose_settings):
    """AppSettings for one test (see :func:`compose_settings`), outputs in its tmp folder."""
    return lambda **overrides: compose_settings(tmp_path / "app", **overrides)
