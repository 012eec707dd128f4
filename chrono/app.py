"""The interactive page: ``python -m chrono.app`` (``make app``) serves http://127.0.0.1:7860.

Open a video (upload, a path on the server, or the built-in demo clip), click points on any frames,
press Track (``chrono.track``'s own job, with progress per window), look at the overlay video, the summary
and the per-point plots, correct by adding or removing points and tracking again (window features are
reused), and download ``tracks.npz``, ``tracks.csv``, ``overlay.mp4`` and ``queries.csv``.

Settings: ``conf/app.yaml`` (``checkpoint=``, ``device=``, ``port=``, ``host=`` (127.0.0.1: this machine
only), limits such as ``max_frames=``). Needs the ``app`` extra (Gradio): ``pip install -e '.[app]'``,
which ``make app`` installs. The page itself: :mod:`chrono.interactive`; the documentation: docs/app.md.
"""

from __future__ import annotations

import importlib.util

from chrono.cli import hydra_command
from chrono.config import register
from chrono.errors import ChronoError

register()


@hydra_command("app", prog="chrono.app")
def main(cfg) -> None:
    """Serve the page until interrupted."""
    from hydra.utils import to_absolute_path

    from chrono.interactive.settings import AppSettings

    values = dict(cfg)
    values["out"] = to_absolute_path(str(cfg.out))
    values["checkpoint"] = to_absolute_path(str(cfg.checkpoint)) if cfg.checkpoint else None
    settings = AppSettings.from_config(values)
    if importlib.util.find_spec("gradio") is None:
        raise ChronoError("the page needs Gradio, the app extra: pip install -e '.[app]' (make app installs it)")
    from chrono.interactive.page import serve

    serve(settings)


if __name__ == "__main__":
    main()
