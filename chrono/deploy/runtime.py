"""Tracking through ONNX Runtime: :class:`OnnxTracker`, and the runtime choice of ``chrono.track`` / ``chrono.evaluate``.

:class:`OnnxTracker` answers like :class:`chrono.models.tracker.ChronoTracker` (the same ``predict``,
``extract_features``, ``sample_query_features``, ``track_features`` and call; torch tensors in and out, on the
CPU) from the graphs ``python -m chrono.export`` wrote (:mod:`chrono.deploy.bundle`), so the evaluation loop and
windowed tracking (:func:`chrono.inference.windowed.track_video`) run on it unchanged. Its answers equal
PyTorch's to float32 rounding (float32 graphs: docs/deploy.md gives the measured differences).

Differences from the PyTorch tracker: the video's H x W is fixed at export (``resolution``); ``predict`` runs
features -> queries -> head with the head called on as many queries at a time as :data:`HEAD_ELEMENTS`
allows (bounded memory), while a call (``tracker(video, queries)``) runs the whole-forward graph in one go.
Execution providers: CUDA where this onnxruntime has it (``onnxruntime-gpu``) and ``device`` allows, else the
CPU; int8 graphs run on the CPU only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from chrono.coords import rescale_tyx, rescale_xy
from chrono.deploy.bundle import (
    INSTALL_HINT, METADATA_KEY, OUTPUTS, PRECISIONS, ModelInfo, OnnxModelError, bundle_paths, int8_path,
)
from chrono.errors import ConfigError
from chrono.models.head import occluded_from_logits
from chrono.models.tracker import model_input

RUNTIMES = ("torch", "onnx")
# Cost-volume elements (batch x queries x frames x cells) per head call of predict / track_features: 64 MB per
# float32 tensor of the export head (which holds a few of them), e.g. 1,024 queries x 4 frames of 64 x 64 cells.
HEAD_ELEMENTS = 1 << 24


def import_onnxruntime():
    """The onnxruntime module, or an :class:`OnnxModelError` saying how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise OnnxModelError(f"runtime=onnx needs the onnxruntime package: {INSTALL_HINT}") from None
    return onnxruntime


def execution_providers(device: str, precision: str, available: Sequence[str]) -> list:
    """ONNX Runtime execution providers for ``device`` (``auto``, ``cpu``, ``cuda`` or ``cuda:K``).

    ``auto``: CUDA when ``available`` has it and the graphs are float32, else the CPU; ``cuda``: CUDA (an error
    without it, or for int8 graphs, which are for CPU tracking).
    """
    device = str(device)
    cuda_ok = "CUDAExecutionProvider" in available
    if device == "auto":
        use_cuda, index = cuda_ok and precision == "fp32", 0
    elif device == "cpu":
        use_cuda, index = False, 0
    elif device == "cuda" or device.startswith("cuda:"):
        if precision != "fp32":
            raise ConfigError(f"device={device} precision={precision}: int8 graphs are for CPU tracking (device=cpu)")
        if not cuda_ok:
            raise ConfigError(f"device={device}: this onnxruntime has no CUDA execution provider (install "
                              "onnxruntime-gpu, or device=cpu)")
        use_cuda, index = True, int(device.partition(":")[2] or 0)
    else:
        raise ConfigError(f"device={device}: expected auto, cpu, cuda or cuda:K")
    return ([("CUDAExecutionProvider", {"device_id": index})] if use_cuda else []) + ["CPUExecutionProvider"]


class OnnxTracker:
    """A Chrono tracker running an exported bundle in ONNX Runtime (see the module docstring).

    Args:
      path: the bundle's whole-forward file ``X.onnx`` (its parts ``X.features.onnx``, ``X.queries.onnx`` and
        ``X.head.onnx`` beside it).
      device: ``auto``, ``cpu``, ``cuda`` or ``cuda:K`` (:func:`execution_providers`). Tensors in and out stay
        on the CPU either way.
      precision: ``fp32``, or ``int8`` for the int8 bundle ``X.int8.onnx`` beside ``X.onnx`` (or given directly).
      threads: ONNX Runtime's intra-op threads (None: its default, one per physical core).
    """

    def __init__(self, path: str | Path, device: str = "auto", precision: str = "fp32", threads: int | None = None):
        ort = import_onnxruntime()
        if precision not in PRECISIONS:
            raise ConfigError(f"precision={precision}: expected one of {', '.join(PRECISIONS)}")
        path = Path(path)
        if not path.is_file():
            raise OnnxModelError(f"{path}: no such ONNX model (python -m chrono.export writes one)")
        if precision == "int8" and not path.name.endswith(".int8.onnx"):
            given, path = path, int8_path(path)
            if not path.is_file():
                raise OnnxModelError(f"{path}: no int8 model beside {given} (export it with python -m chrono.export "
                                     "... precision=int8)")
        self.path, self.precision = path, precision
        self.providers = execution_providers(device, precision, ort.get_available_providers())
        self._options = ort.SessionOptions()
        self._options.log_severity_level = 3  # errors only
        if threads:
            self._options.intra_op_num_threads = int(threads)
        self._paths = bundle_paths(path)
        self._sessions: dict[str, Any] = {}
        self._infos: dict[str, ModelInfo] = {}
        self._session("features")
        self.info = self._infos["features"]
        if self.info.precision != precision:
            raise OnnxModelError(f"{path}: a {self.info.precision} model, but precision={precision}; "
                                 f"give precision={self.info.precision} (or the {precision} model)")
        for graph in ("queries", "head"):
            self._session(graph)

    # -- sessions -------------------------------------------------------------------------------------------

    def _session(self, graph: str):
        """The session of ``graph``, created on first use (its :class:`ModelInfo` checked and kept)."""
        if graph in self._sessions:
            return self._sessions[graph]
        ort = import_onnxruntime()
        file = self._paths[graph]
        if not file.is_file():
            raise OnnxModelError(f"{file}: missing beside {self.path} (python -m chrono.export writes the four files "
                                 "of a model together)")
        try:
            session = ort.InferenceSession(str(file), self._options, providers=self.providers)
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own kinds for unreadable or invalid files
            first = next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)
            raise OnnxModelError(f"{file}: not a model ONNX Runtime can load ({first[:200]})") from None
        meta = session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in meta:
            raise OnnxModelError(f"{file}: not an ONNX model written by python -m chrono.export (no {METADATA_KEY} "
                                 "metadata)")
        info = ModelInfo.from_json(meta[METADATA_KEY], str(file))
        if info.graph != graph:
            raise OnnxModelError(f"{file}: holds the {info.graph} graph, not the {graph} graph (give onnx_model= the "
                                 "whole-forward file X.onnx; its parts are found beside it)")
        if graph != "features" and not info.same_model(self.info):
            raise OnnxModelError(f"{file}: from another export than {self._paths['features']} (export again)")
        self._sessions[graph], self._infos[graph] = session, info
        return session

    def _run(self, graph: str, feeds: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
        arrays = {k: np.ascontiguousarray(v.detach().to("cpu", torch.float32).numpy()) for k, v in feeds.items()}
        return [torch.from_numpy(a) for a in self._session(graph).run(None, arrays)]

    # -- what the PyTorch tracker offers ----------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        """Tensors in and out live on the CPU (ONNX Runtime copies them to its device)."""
        return torch.device("cpu")

    @property
    def resolution(self) -> tuple[int, int]:
        """(H, W) of the frames the graphs take (fixed at export)."""
        return self.info.resolution

    @property
    def grid_size(self) -> int:
        return self.info.grid

    def _check_frames(self, hw: Sequence[int], what: str = "frames") -> None:
        if tuple(int(v) for v in hw) != tuple(self.resolution):
            H, W = self.resolution
            raise OnnxModelError(f"{self.path}: exported for {H} x {W} frames, given {what} of {hw[0]} x {hw[1]} "
                                 f"(track at resolution=[{H},{W}], or export again with resolution=[{hw[0]},{hw[1]}])")

    def extract_features(self, video: torch.Tensor) -> torch.Tensor:
        """Video [B, T, H, W, 3] float in [-1, 1] at :attr:`resolution` -> features [B, T, g, g, C]."""
        self._check_frames(video.shape[2:4])
        return self._run("features", {"video": video})[0]

    def sample_query_features(self, features: torch.Tensor, query_points: torch.Tensor,
                              video_hw: Sequence[int]) -> torch.Tensor:
        """Features [B, N, C] of query points [B, N, 3] (t, y, x) in pixels of a ``video_hw`` video (t a frame
        index into ``features`` [B, T, g, g, C])."""
        return self._run("queries", {"features": features, "query_points": self._to_export(query_points, video_hw)})[0]

    def _to_export(self, query_points: torch.Tensor, video_hw: Sequence[int]) -> torch.Tensor:
        """Query points in pixels of ``video_hw`` -> pixels of the export resolution (no-op when equal)."""
        q = torch.as_tensor(query_points, dtype=torch.float32)
        return q if tuple(video_hw) == tuple(self.resolution) else rescale_tyx(q, video_hw, self.resolution)

    def track_features(self, features: torch.Tensor, query_points: torch.Tensor, video_hw: Sequence[int],
                       query_features: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The head on ``features`` [B, T, g, g, C] for query points [B, N, 3] (t, y, x) in pixels of a ``video_hw``
        video: ``tracks`` [B, N, T, 2] (x, y) in those pixels, ``occlusion`` and ``expected_dist`` [B, N, T]
        logits. ``query_features`` [B, N, C]: sampled elsewhere (windowed tracking); else from ``features``.
        Queries go through the head :data:`HEAD_ELEMENTS` cost-volume elements at a time."""
        q = self._to_export(query_points, video_hw)
        if query_features is None:
            query_features = self._run("queries", {"features": features, "query_points": q})[0]
        B, T, h, w, _ = features.shape
        N = q.shape[1]
        chunk = max(1, HEAD_ELEMENTS // max(1, B * T * h * w))
        if N == 0:
            return {k: torch.zeros((B, 0, T, 2) if k == "tracks" else (B, 0, T)) for k in OUTPUTS}
        parts = [self._run("head", {"features": features, "query_points": q[:, s : s + chunk],
                                    "query_features": query_features[:, s : s + chunk]})
                 for s in range(0, N, chunk)]
        out = {k: torch.cat([p[i] for p in parts], dim=1) for i, k in enumerate(OUTPUTS)}
        if tuple(video_hw) != tuple(self.resolution):
            out["tracks"] = rescale_xy(out["tracks"], self.resolution, video_hw)
        return out

    def __call__(self, video: torch.Tensor, query_points: torch.Tensor) -> dict[str, torch.Tensor]:
        """The reference forward through the whole-forward graph: video [B, T, H, W, 3] float in [-1, 1] at
        :attr:`resolution`, query points [B, N, 3] (t, y, x) in its pixels -> ``tracks`` [B, N, T, 2],
        ``occlusion``, ``expected_dist`` [B, N, T]. Memory grows with N x T (use :meth:`predict` for many)."""
        self._check_frames(video.shape[2:4])
        return dict(zip(OUTPUTS, self._run("full", {"video": video, "query_points": query_points})))

    forward = __call__

    @torch.no_grad()
    def predict(self, video, query_points, resolution: Sequence[int] = (256, 256)) -> dict[str, torch.Tensor]:
        """The reference inference, like :meth:`chrono.models.tracker.ChronoTracker.predict`: video [B, T, H, W, 3]
        uint8 or float in [-1, 1] (numpy or torch) resized to ``resolution`` (which must be the export's),
        query points [B, N, 3] (t, y, x) in its pixels -> ``tracks`` [B, N, T, 2] (x, y) in its pixels and
        ``occluded`` bool [B, N, T]."""
        self._check_frames(tuple(resolution), "resolution")
        H, W = video.shape[2:4]
        queries = rescale_tyx(torch.as_tensor(query_points, dtype=torch.float32), (H, W), tuple(resolution))
        out = self.track_features(self.extract_features(model_input(video, "cpu", tuple(resolution))), queries,
                                  tuple(resolution))
        return {"tracks": rescale_xy(out["tracks"], tuple(resolution), (H, W)),
                "occluded": occluded_from_logits(out["occlusion"], out["expected_dist"])}


def open_tracker(runtime: str, onnx_model: str | Path | None, precision: str, device: str,
                 overrides: Mapping[str, Any], load_torch: Callable[[], Any]) -> Any:
    """The tracker a command's runtime settings ask for (``chrono.track``, ``chrono.evaluate``).

    ``runtime=torch``: ``load_torch()`` (PyTorch, from the checkpoint). ``runtime=onnx``: an :class:`OnnxTracker`
    of ``onnx_model`` at ``precision`` on ``device``. ``overrides``: the tracker settings given on the command line
    (input size, head settings), which an exported model has fixed: refused with ``runtime=onnx``.
    """
    if runtime not in RUNTIMES:
        raise ConfigError(f"runtime={runtime}: expected one of {', '.join(RUNTIMES)}")
    if precision not in PRECISIONS:
        raise ConfigError(f"precision={precision}: expected one of {', '.join(PRECISIONS)}")
    if runtime == "torch":
        if onnx_model:
            raise ConfigError(f"onnx_model={onnx_model} is run by runtime=onnx (add it; the default runtime=torch "
                              "reads checkpoint=)")
        if precision != "fp32":
            raise ConfigError(f"precision={precision} runs through ONNX Runtime: add runtime=onnx onnx_model=PATH")
        return load_torch()
    if not onnx_model:
        raise ConfigError("runtime=onnx needs onnx_model=PATH (python -m chrono.export checkpoint=... out=PATH writes "
                          "one)")
    if overrides:
        given = ", ".join(f"tracker.{k}={v}" for k, v in overrides.items())
        raise ConfigError(f"{given}: fixed in an exported model; export again with it (python -m chrono.export)")
    return OnnxTracker(onnx_model, device=device, precision=precision)
