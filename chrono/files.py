"""File helpers of the whole suite: where things live, atomic writes of any kind, and locks.

Every file the suite writes goes through :func:`atomic_path`: it is written under a hidden temporary
name in its own folder (``.<name>.<random>.tmp``) and renamed into place, so a crash never leaves half a
checkpoint, shard, table or video behind (:func:`remove_stale_temps` clears what a hard kill left).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

TEMP_SUFFIX = ".tmp"


# --------------------------------------------------------------------------------------------------
# Where things live


def repo_root() -> Path:
    """The checkout this package runs from (the folder holding ``chrono/``)."""
    return Path(__file__).resolve().parents[1]


def project_root() -> Path:
    """The checkout when the package runs from one (pyproject.toml beside ``chrono/``), else the working
    directory (an installed copy): where ``outputs/`` goes."""
    root = repo_root()
    return root if (root / "pyproject.toml").is_file() else Path.cwd()


def conf_dir() -> Path:
    """The Hydra configuration folder (``conf/``) of the checkout."""
    return repo_root() / "conf"


def data_root() -> Path:
    """Where generated data lives: ``$CHRONO_DATA_DIR`` if set, else ``<repo>/data``."""
    env = os.environ.get("CHRONO_DATA_DIR")
    return Path(env).expanduser() if env else repo_root() / "data"


def resolve_path(path: str | os.PathLike) -> Path:
    """A user path: absolute as is; relative to the working directory if it exists there, else to the repo."""
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p
    return repo_root() / p


# --------------------------------------------------------------------------------------------------
# Atomic writes


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_temp(folder: str | os.PathLike, name: str, directory: bool = False) -> Path:
    """A fresh hidden temporary file (or folder) for ``name`` in ``folder``, with the permissions open()
    or mkdir() would give (mkstemp alone would make it private to the user)."""
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=TEMP_SUFFIX, dir=folder))
        tmp.chmod(0o777 & ~_umask())
    else:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=TEMP_SUFFIX, dir=folder)
        os.close(fd)
        tmp = Path(tmp)
        tmp.chmod(0o666 & ~_umask())
    return tmp


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; on success it is renamed onto ``path``, else removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp(path.parent, path.name)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def staged_files(folder: str | os.PathLike, name: str) -> Iterator[Path]:
    """Yield a temporary folder inside ``folder`` for files that belong together and refer to each other by
    name (they are written there under their final names); on success each file is renamed into ``folder``
    (every rename atomic, none half-written) and the temporary folder removed; on failure all of it is removed."""
    import shutil

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = make_temp(folder, name, directory=True)
    try:
        yield tmp
        for path in sorted(tmp.iterdir()):
            os.replace(path, folder / path.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_atomic(path: str | os.PathLike, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it onto ``path``; ``path``."""
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """``text`` at ``path``, written atomically."""
    return write_atomic(path, lambda tmp: tmp.write_text(text))


def write_json_atomic(path: str | os.PathLike, data: Any, indent: int = 2) -> Path:
    """``data`` as indented JSON (and a final newline) at ``path``, written atomically."""
    return write_text_atomic(path, json.dumps(data, indent=indent) + "\n")


def torch_save_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` at ``path``, written atomically: a crash never leaves half a checkpoint."""
    import torch

    return write_atomic(path, lambda tmp: torch.save(obj, tmp))


def stale_temps(folder: str | os.PathLike, name: str) -> list[Path]:
    """Temporary files (or folders) :func:`make_temp` made for ``name`` in ``folder`` and nobody renamed."""
    folder = Path(folder)
    return sorted(folder.glob(f".{name}.*{TEMP_SUFFIX}")) if folder.is_dir() else []


def remove_stale_temps(folder: str | os.PathLike, name: str = "*") -> list[Path]:
    """Remove what a hard kill left of writes into ``folder`` (for ``name``, or every name); the removed paths.

    Call it only where no other process may be writing the same names at the same time (e.g. at the start
    of a run that owns the folder).
    """
    import shutil

    removed = stale_temps(folder, name)
    for path in removed:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return removed


# --------------------------------------------------------------------------------------------------
# Locks


@contextlib.contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (created if missing): one writer at a time per folder."""
    try:
        import fcntl
    except ImportError:  # not POSIX (Windows): no lock, writes are still atomic
        yield
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
