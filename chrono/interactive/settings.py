"""The page's settings: every value comes from ``conf/app.yaml`` (and its command-line overrides)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from chrono.errors import ConfigError


@dataclass(frozen=True)
class AppSettings:
    """What ``python -m chrono.app`` was started with (see conf/app.yaml for the meaning of each field)."""

    checkpoint: str | None
    device: str
    host: str
    port: int
    out: Path
    server_paths: bool
    max_frames: int
    max_side: int | None
    max_points: int
    max_grid: int
    display_side: int
    feature_cache_mb: float
    window: int | None
    overlap: int | None
    resolution: tuple[int, int]
    trail: int
    demo_frames: int
    demo_size: int
    tracker_overrides: dict

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> "AppSettings":
        """From the composed config (paths already absolute); ConfigError on a missing or impossible value."""
        names = [f.name for f in fields(cls) if f.name != "tracker_overrides"]
        missing = [n for n in names if n not in cfg]
        if missing:
            raise ConfigError(f"app config: missing setting(s) {missing}")
        values = {n: cfg[n] for n in names}
        values["out"] = Path(values["out"])
        values["resolution"] = tuple(int(v) for v in values["resolution"])
        tracker = cfg.get("tracker") or {}
        values["tracker_overrides"] = {k: v for k, v in dict(tracker).items() if k != "name" and v is not None}
        for name in ("max_frames", "max_points", "max_grid", "display_side", "demo_frames", "demo_size", "trail"):
            if int(values[name]) < 1:
                raise ConfigError(f"{name}={values[name]}: must be at least 1")
        if not 0 < int(values["port"]) < 65536:
            raise ConfigError(f"port={values['port']}: not a TCP port")
        if float(values["feature_cache_mb"]) < 0:
            raise ConfigError(f"feature_cache_mb={values['feature_cache_mb']}: must be >= 0 (0 keeps no features)")
        return cls(**values)

    @property
    def exposed(self) -> bool:
        """Whether the page listens beyond this machine."""
        return self.host not in ("127.0.0.1", "localhost", "::1")
