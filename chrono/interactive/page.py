"""The Gradio page of ``python -m chrono.app`` and its server (the only module here that imports Gradio).

Every handler keeps the page alive: the suite's own errors (:class:`chrono.errors.ChronoError`: a video it
cannot read or that is too long, a point outside the frame, a checkpoint that does not fit) become a message
in the status box; anything else is a bug, reported as one line in the page with its traceback on the
server's stderr. Elements carry ``elem_id`` names (``#frame``, ``#track``, ``#status``, ``#dl_npz``, ...)
that the browser tests and the docs use.

State per browser tab: the :class:`~chrono.interactive.session.Session` (video and points) and the last
:class:`~chrono.interactive.tracking.TrackResult`, kept apart so that a Track running while the user goes
on clicking never overwrites the clicks. Shared by every tab: the loaded tracker and the feature store;
one Track runs at a time (one device).
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no version check or telemetry (before importing gradio)

import functools  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402

import gradio as gr  # noqa: E402
import pandas as pd  # noqa: E402  (a dependency of gradio)

from chrono.errors import ChronoError  # noqa: E402
from chrono.inference.windowed import FeatureStore  # noqa: E402
from chrono.interactive.checkpoints import TrackerLoader, checkpoint_choices, note_for  # noqa: E402
from chrono.interactive.plots import QUANTITIES, color_map, point_series, result_summary  # noqa: E402
from chrono.interactive.points import PointError  # noqa: E402
from chrono.interactive.session import Session, open_demo, open_path  # noqa: E402
from chrono.interactive.settings import AppSettings  # noqa: E402
from chrono.interactive.tracking import run_track  # noqa: E402
from chrono.video_io import VideoError  # noqa: E402

ADD, REMOVE = "add a point", "remove the nearest point"
ALL = "all"
VIDEO_TYPES = [".mp4", ".mov", ".avi", ".webm", ".mkv", ".npy"]
DOWNLOADS = {"npz": ("tracks.npz", "dl_npz"), "csv": ("tracks.csv", "dl_csv"), "overlay": ("overlay.mp4", "dl_mp4"),
             "queries": ("queries.csv", "dl_queries")}
INTRO = """# Chrono: track points by clicking
Open a video, move to a frame, click to add points (on as many frames as you like), press **Track**.
Points are tracked forward and backward in time. After a result, add or remove points and press Track again:
the features of the video are reused. Coordinates are pixels of the video (x right, y down)."""


class ChronoApp:
    """The server: settings, the tracker of the chosen checkpoint, the feature store, and the page."""

    def __init__(self, settings: AppSettings):
        self.settings = settings
        self.store = FeatureStore(max_bytes=int(settings.feature_cache_mb * 2**20))
        self.trackers = TrackerLoader(settings.device, settings.tracker_overrides)
        self.checkpoints, self.default_checkpoint = checkpoint_choices(settings.checkpoint)
        self.url: str | None = None
        self.blocks = build_page(self)

    def launch(self, block: bool = True) -> "ChronoApp":
        """Serve on ``settings.host:port``; with ``block`` wait until interrupted, else return at once."""
        s = self.settings
        s.out.mkdir(parents=True, exist_ok=True)
        self.blocks.queue(default_concurrency_limit=1)
        try:
            _, self.url, _ = self.blocks.launch(
                server_name=s.host, server_port=s.port, prevent_thread_lock=True, quiet=True, show_error=True,
                share=False, inbrowser=False, footer_links=[], allowed_paths=[str(s.out.resolve())])
        except OSError as err:
            raise ChronoError(f"port={s.port} on {s.host}: cannot listen there ({err}); choose another port=") from err
        print(f"chrono.app: serving on {self.url} (Ctrl-C stops)", file=sys.stderr, flush=True)
        if s.exposed:
            print(f"chrono.app: WARNING: host={s.host} exposes the page to the network: whoever reaches this port "
                  f"can run the tracker{' and open any file this process can read' if s.server_paths else ''} "
                  "(docs/app.md)", file=sys.stderr, flush=True)
        if block:
            self.blocks.block_thread()
        return self

    def close(self) -> None:
        self.blocks.close()


def _guarded(status):
    """Decorator for a handler whose outputs include ``status``: errors become a message in it."""

    def wrap(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except ChronoError as err:
                return {status: f"**Error:** {err}"}
            except Exception as err:  # noqa: BLE001 - a bug: say so in the page, keep serving, log the traceback
                traceback.print_exc()
                return {status: f"**Internal error** ({type(err).__name__}: {err}). The details are in the "
                                "server's log; the page keeps running."}

        return run

    return wrap


def _need_video(session):
    if session is None:
        raise VideoError("open a video first (upload one, type a path on the server, or load the demo clip)")
    return session


def build_page(app: ChronoApp) -> gr.Blocks:
    """The page's components and handlers (see the module docstring)."""
    settings = app.settings
    with gr.Blocks(title="Chrono point tracking", delete_cache=(3600, 3600)) as blocks:
        session = gr.State(None)  # Session of this tab
        result = gr.State(None)  # TrackResult of this tab's last Track
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                checkpoint = gr.Dropdown(app.checkpoints, value=app.default_checkpoint, label="Checkpoint",
                                         allow_custom_value=True, elem_id="checkpoint")
                checkpoint_note = gr.Markdown(note_for(app.default_checkpoint), elem_id="checkpoint_note")
                upload = gr.File(label="Upload a video (" + ", ".join(VIDEO_TYPES) + ")", file_types=VIDEO_TYPES,
                                 type="filepath", elem_id="upload")
                server_path = gr.Textbox(label="...or a path on the server (video file, folder of frames, .npy)",
                                         elem_id="server_path", visible=settings.server_paths)
                open_button = gr.Button("Open path", elem_id="open_path", visible=settings.server_paths)
                demo_button = gr.Button("Load the demo clip", elem_id="load_demo")
                video_info = gr.Markdown("No video open.", elem_id="video_info")
            with gr.Column(scale=3):
                slider = gr.Slider(0, 1, value=0, step=1, label="Frame", elem_id="frame_slider")
                frame = gr.Image(label="Click to add a point", interactive=False, format="png", buttons=[],
                                 elem_id="frame")
                with gr.Row():
                    mode = gr.Radio([ADD, REMOVE], value=ADD, label="A click on the frame", elem_id="mode")
                    grid_n = gr.Number(4, label="n", precision=0, minimum=1, maximum=settings.max_grid,
                                       elem_id="grid_n")
                    grid_button = gr.Button("Add an n x n grid on this frame", elem_id="grid")
                with gr.Row():
                    remove_id = gr.Number(None, label="point number", precision=0, minimum=0, elem_id="remove_id")
                    remove_button = gr.Button("Remove that point", elem_id="remove")
                    remove_last = gr.Button("Remove the last point", elem_id="remove_last")
                    clear = gr.Button("Remove all points", elem_id="clear")
                npoints = gr.Markdown("0 points", elem_id="npoints")
                points_table = gr.Dataframe(headers=["point", "frame", "x", "y"], label="Points (select a row to "
                                            "highlight its track)", interactive=False, elem_id="points")
                track_button = gr.Button("Track", variant="primary", elem_id="track")
                status = gr.Markdown("Open a video to begin.", elem_id="status", container=True, min_height=80,
                                     padding=True)
        gr.Markdown("## Result")
        with gr.Row():
            overlay = gr.Video(label="overlay.mp4 (disc: visible, ring: occluded)", interactive=False,
                               elem_id="overlay")
            summary = gr.Image(label="Summary (first frame, every trajectory)", interactive=False, format="png",
                               buttons=[], elem_id="summary")
        highlight = gr.Dropdown([ALL], value=ALL, label="Highlight a point", elem_id="highlight")
        with gr.Row():
            plots = {q: gr.LinePlot(x="frame", y="value", color="point", title=q, height=240,
                                    y_lim=[-0.1, 1.1] if q == "visible" else None,
                                    x_title="frame", y_title=q + (" (1 = visible)" if q == "visible" else " (pixels)"),
                                    elem_id=f"plot_{q}") for q in QUANTITIES}
        with gr.Row():
            downloads = {key: gr.DownloadButton(label, visible=False, elem_id=elem)
                         for key, (label, elem) in DOWNLOADS.items()}

        points_outputs = [frame, points_table, npoints, status]
        result_outputs = [overlay, summary, highlight, *plots.values(), *downloads.values()]

        def shown_points(s, r, t, message):
            return {frame: s.frame(t, r), points_table: s.points.rows(), npoints: s.points.describe(), status: message}

        def cleared_result():
            return {result: None, overlay: None, summary: None, highlight: gr.Dropdown([ALL], value=ALL),
                    **{p: None for p in plots.values()}, **{d: gr.DownloadButton(visible=False)
                                                            for d in downloads.values()}}

        def opened(source, old):
            if old is not None and old.source is not source:
                app.store.discard(old.source)  # its window features are no use any more
            s = Session(source, settings)
            T = source.num_frames
            return {session: s, slider: gr.Slider(0, max(T - 1, 1), value=0, step=1, interactive=T > 1),
                    video_info: s.describe(), **cleared_result(),
                    **shown_points(s, None, 0, "Opened. Click on the frame to add points; move the slider to "
                                               "place points on other frames.")}

        open_outputs = [session, slider, video_info, result, *points_outputs, *result_outputs]
        demo_button.click(_guarded(status)(lambda old: opened(open_demo(settings), old)), session, open_outputs)

        @_guarded(status)
        def on_open_path(old, path):
            if not settings.server_paths:
                raise VideoError("opening paths on the server is turned off (server_paths=false)")
            return opened(open_path(path, settings), old)

        open_button.click(on_open_path, [session, server_path], open_outputs)
        server_path.submit(on_open_path, [session, server_path], open_outputs)

        @_guarded(status)
        def on_upload(old, path):
            if not path:
                raise VideoError("the upload brought no file")
            return opened(open_path(path, settings), old)

        # then empty the drop zone again, ready for the next file (the video stays open)
        upload.upload(on_upload, [session, upload], open_outputs).then(lambda: None, None, upload)

        @_guarded(status)
        def on_frame(s, r, t):
            s = _need_video(s)
            return {frame: s.frame(s.clamp_frame(t), r)}

        slider.change(on_frame, [session, result, slider], [frame, status])

        @_guarded(status)
        def on_click(s, r, t, click_mode, evt: gr.SelectData):
            s = _need_video(s)
            t = s.clamp_frame(t)
            x, y = s.to_video(*evt.index)
            if click_mode == REMOVE:
                i = s.points.nearest(t, x, y, radius=max(8.0 / s.scale, 2.0))
                if i is None:
                    return {status: f"No point of frame {t} near x={x:g}, y={y:g}."}
                s.points.remove(i)
                message = f"Removed point {i} (later points are renumbered)."
            else:
                i = s.points.add(t, x, y)
                message = f"Point {i}: frame {t}, x={x:g}, y={y:g}."
            return shown_points(s, r, t, message)

        # "multiple": a click made while the previous one is still being handled is queued, not dropped
        frame.select(on_click, [session, result, slider, mode], points_outputs, trigger_mode="multiple")

        def points_edit(edit):
            @_guarded(status)
            def run(s, r, t, *args):
                s = _need_video(s)
                t = s.clamp_frame(t)
                return shown_points(s, r, t, edit(s, t, *args))

            return run

        def add_grid(s, t, n):
            if n is None or not 1 <= int(n) <= settings.max_grid:
                raise PointError(f"the grid size n must be 1..{settings.max_grid}, got {n}")
            new = s.points.add_grid(int(n), t)
            return f"Added points {new[0]}-{new[-1]}: a {int(n)} x {int(n)} grid on frame {t}."

        def remove_number(s, t, i):
            if i is None:
                raise PointError("type the number of the point to remove")
            s.points.remove(int(i))
            return f"Removed point {int(i)} (later points are renumbered)."

        edit_inputs = [session, result, slider]
        grid_button.click(points_edit(add_grid), [*edit_inputs, grid_n], points_outputs)
        remove_button.click(points_edit(remove_number), [*edit_inputs, remove_id], points_outputs)
        remove_last.click(points_edit(lambda s, t: s.points.remove_last() or "Removed the last point."),
                          edit_inputs, points_outputs)
        clear.click(points_edit(lambda s, t: s.points.clear() or "Removed every point."), edit_inputs, points_outputs)

        checkpoint.change(lambda choice: note_for(choice), checkpoint, checkpoint_note)

        def plotted(r, only):
            return {plots[q]: gr.LinePlot(pd.DataFrame(point_series(r.tracks, r.occluded, r.frame_ids, q, only)),
                                          color_map=color_map(len(r.tracks))) for q in QUANTITIES}

        @_guarded(status)
        def on_track(s, choice, t, progress=gr.Progress()):
            s = _need_video(s)
            if not len(s.points):
                raise PointError("no points to track: click on the frame (or add a grid) first")
            source, queries = s.source, s.points.queries()  # a snapshot: clicks may go on while this runs
            notes = []
            progress(0.0, desc="loading the tracker")
            tracker, replaced = app.trackers.get(choice, notes.append)
            if replaced is not None:
                app.store.discard(replaced)  # features of the previous checkpoint
            r = run_track(source, queries, tracker, app.store, settings,
                          lambda fraction, text: progress(fraction, desc=text))
            message = r.describe() + "".join(f"\n\n**{n}**" for n in notes)
            return {result: r, status: message, overlay: str(r.files["overlay"]), summary: result_summary(r, None),
                    highlight: gr.Dropdown([ALL] + [str(i) for i in range(len(r.tracks))], value=ALL),
                    frame: s.frame(s.clamp_frame(t), r), **plotted(r, None),
                    **{downloads[k]: gr.DownloadButton(value=str(r.files[k]), visible=True) for k in DOWNLOADS}}

        track_button.click(on_track, [session, checkpoint, slider], [result, status, frame, *result_outputs],
                           concurrency_limit=1, concurrency_id="tracker", show_progress_on=[status])

        @_guarded(status)
        def on_highlight(r, choice):
            if r is None:
                return {}
            only = None if choice in (None, ALL) else int(choice)
            return {summary: result_summary(r, only), **plotted(r, only)}

        highlight.change(on_highlight, [result, highlight], [summary, status, *plots.values()])

        def on_row(r, evt: gr.SelectData):
            row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
            if r is None or not 0 <= int(row) < len(r.tracks):
                return gr.Dropdown()
            return gr.Dropdown(value=str(int(row)))

        points_table.select(on_row, result, highlight)
    return blocks


def serve(settings: AppSettings, block: bool = True) -> ChronoApp:
    """Build the page and serve it (see :class:`ChronoApp`)."""
    return ChronoApp(settings).launch(block=block)


__all__ = ["ChronoApp", "build_page", "serve"]
