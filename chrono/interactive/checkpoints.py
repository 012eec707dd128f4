"""The checkpoints the page offers, and loading the chosen one once.

Offered: every ``*.ckpt`` / ``*.pth`` / ``*.pt`` under ``checkpoints/`` and every ``*.ckpt`` in an
``outputs/**/checkpoints/`` folder (``make train`` writes ``best.ckpt`` and ``last.ckpt`` there), newest
first, plus :data:`UNTRAINED`. The default is the checkpoint the page was started with, else the newest
``make train`` checkpoint (:func:`chrono.inference.demo.newest_train_checkpoint`), else :data:`UNTRAINED`,
whose tracks are meaningless (the page says so, as ``make demo`` does).
"""

from __future__ import annotations

import threading
from pathlib import Path

from chrono import dist
from chrono.checkpoint import CheckpointError
from chrono.errors import ChronoError
from chrono.files import project_root
from chrono.inference.demo import UNTRAINED_WARNING, newest_train_checkpoint, untrained_tracker
from chrono.inference.job import load_tracker_for

UNTRAINED = "untrained (random weights)"
UNTRAINED_NOTE = UNTRAINED_WARNING.format(what="an untrained tracker", shows="the page only shows the pipeline")


def find_checkpoints(root: Path | None = None) -> list[Path]:
    """Checkpoint files under ``root``'s ``checkpoints/`` and ``outputs/**/checkpoints/``, newest first."""
    root = project_root() if root is None else Path(root)
    found = set()
    if (root / "checkpoints").is_dir():
        found |= {p for ext in ("ckpt", "pth", "pt") for p in (root / "checkpoints").rglob(f"*.{ext}")}
    if (root / "outputs").is_dir():
        found |= set((root / "outputs").glob("**/checkpoints/*.ckpt"))
    return sorted((p for p in found if p.is_file()), key=lambda p: (-p.stat().st_mtime, str(p)))


def checkpoint_choices(configured: str | None, root: Path | None = None) -> tuple[list[str], str]:
    """(the dropdown's choices, its default): paths as strings, :data:`UNTRAINED` last."""
    root = project_root() if root is None else Path(root)
    choices = [str(p) for p in find_checkpoints(root)]
    if configured:
        default = str(configured)
    else:
        newest = newest_train_checkpoint(root / "outputs" / "train")
        default = str(newest) if newest is not None else UNTRAINED
    if default not in choices and default != UNTRAINED:
        choices.insert(0, default)
    return choices + [UNTRAINED], default


def note_for(choice: str | None) -> str:
    """What the page says about the chosen checkpoint."""
    if not choice or choice == UNTRAINED:
        return f"**{UNTRAINED_NOTE}**"
    return f"Checkpoint: `{choice}`"


class TrackerLoader:
    """The tracker of the chosen checkpoint, loaded once and kept until another one is chosen."""

    def __init__(self, device: str, overrides: dict):
        self.device, self.overrides = dist.resolve_device(device), dict(overrides)
        self.choice, self.tracker = None, None
        self._lock = threading.Lock()

    def get(self, choice: str | None, say=lambda message: None):
        """(tracker, the tracker it replaced or None); CheckpointError naming the file when it cannot be used."""
        choice = choice or UNTRAINED
        with self._lock:
            if choice == self.choice:
                return self.tracker, None
            if choice == UNTRAINED:
                tracker = untrained_tracker(self.device, say, self.overrides, "the page only shows the pipeline")
            else:
                path = Path(choice).expanduser()
                if not path.is_file():
                    raise CheckpointError(f"{path}: no such checkpoint file")
                try:
                    tracker = load_tracker_for(path, self.device, self.overrides)
                except ChronoError:
                    raise
                except (RuntimeError, ValueError, KeyError, OSError) as err:  # a file torch or the loader cannot use
                    raise CheckpointError(f"{path}: cannot be loaded as a tracker: {err}") from err
            old, self.choice, self.tracker = self.tracker, choice, tracker
            return tracker, old
