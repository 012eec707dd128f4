"""ONNX export of a Chrono tracker: the whole reference forward and its streaming parts, checked before writing.

Route: ``torch.onnx.export(dynamo=True)`` (``torch.export``, non-strict) at opset :data:`OPSET`, on a copy of the
tracker with the ``export`` head formulation (:func:`chrono.models.head.export_head`: bitwise the fast head's
answer, as one graph without data-dependent control flow). The batch B, the frames T and the queries N are
dynamic; the video's H x W is fixed at export (the tracker resizes it to its input size inside the graph).

What the exporter needs from the model, and where it is done (docs/deploy.md, "Operators and workarounds"):
- no Python cache keyed by a symbolic size: the adapters' band mask is made afresh while tracing
  (:func:`chrono.layers.attention.tracing`), the head's window tables are built with numpy (constants);
- no Python loop over a symbolic size: one head call when one chunk holds every query (a ``range`` over N
  made torch.export specialise N to the example's value, silently);
- opset >= 20 for the trilinear query sample (``GridSample`` on a 5-D input).
``torch.onnx.export`` may still specialise an axis silently: :func:`export_graph` refuses a graph whose
dynamic axes came out fixed. :func:`export_bundle` then runs the graphs in ONNX Runtime on a random clip and
compares them with PyTorch before anything is written.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

import chrono
from chrono.deploy.bundle import GRAPHS, INSTALL_HINT, METADATA_KEY, OUTPUTS, ModelInfo, bundle_paths, int8_path
from chrono.deploy.compare import Deviation, deviation
from chrono.errors import ChronoError
from chrono.files import atomic_path, staged_files
from chrono.models.tracker import ChronoTracker

OPSET = 20  # GridSample on a 5-D input (the trilinear query sample) is ONNX from opset 20 on
ATTENTION = ("ort", "onnx")  # the ViT's attention: ONNX Runtime's fused operator, or standard operators
# Sizes of the example inputs the graphs are traced with: distinct from each other, from 0 and 1 (which
# torch.export specialises) and from every fixed size, so that no dynamic axis can be mistaken for another.
EXAMPLE_BATCH, EXAMPLE_FRAMES, EXAMPLE_QUERIES = 2, 4, 5
# The export's own check (a random clip through ONNX Runtime against PyTorch): 10x the margins the tests
# hold the fixture to (1e-3 px, 1e-4), so that any checkpoint and input size passes when the graph is right.
CHECK_TRACKS_PX = 1e-2
CHECK_LOGITS = 1e-3
CHECK_FRAMES, CHECK_QUERIES = 3, 7  # the check clip: sizes other than the example's
# One ONNX file holds at most 2 GB (protobuf); weights are stored inside it.
MAX_WEIGHT_BYTES = 1_800_000_000


class ExportError(ChronoError):
    """The export failed, or its graphs do not reproduce PyTorch; the message says which and by how much."""


def exportable(tracker: ChronoTracker) -> ChronoTracker:
    """A float32 CPU copy of ``tracker`` in eval mode with the ``export`` head and no query chunking (its
    answers are bitwise those of the fast head); ``tracker`` itself is left as it is."""
    cfg = replace(tracker.cfg, head="export", query_chunk_size=None)
    copy = ChronoTracker(cfg)
    copy.load_state_dict({k: v.detach().to("cpu", torch.float32) for k, v in tracker.state_dict().items()})
    return copy.eval()


class ForwardGraph(nn.Module):
    """``full``: video [B, T, H, W, 3] float in [-1, 1], query_points [B, N, 3] (t, y, x) video pixels ->
    tracks [B, N, T, 2] (x, y) video pixels, occlusion [B, N, T], expected_dist [B, N, T] logits."""

    def __init__(self, tracker: ChronoTracker):
        super().__init__()
        self.tracker = tracker

    def forward(self, video, query_points):
        out = self.tracker(video, query_points)
        return tuple(out[k] for k in OUTPUTS)


class FeaturesGraph(nn.Module):
    """``features``: video [B, T, H, W, 3] float in [-1, 1] -> features [B, T, g, g, C], L2-normalised."""

    def __init__(self, tracker: ChronoTracker):
        super().__init__()
        self.tracker = tracker

    def forward(self, video):
        return self.tracker.extract_features(video)


class QueriesGraph(nn.Module):
    """``queries``: features [B, T, g, g, C], query_points [B, N, 3] (t, y, x) in pixels of an H x W video, t a
    frame index into ``features`` -> query_features [B, N, C] (trilinear sample)."""

    def __init__(self, tracker: ChronoTracker, resolution: tuple[int, int]):
        super().__init__()
        self.tracker, self.resolution = tracker, resolution

    def forward(self, features, query_points):
        return self.tracker.sample_query_features(features, query_points, self.resolution)


class HeadGraph(nn.Module):
    """``head``: features [B, T, g, g, C], query_points [B, N, 3] (t, y, x) in pixels of an H x W video (t
    relative to the first feature frame; the query frame is pinned when it lies among them), query_features
    [B, N, C] -> tracks [B, N, T, 2], occlusion [B, N, T], expected_dist [B, N, T]."""

    def __init__(self, tracker: ChronoTracker, resolution: tuple[int, int]):
        super().__init__()
        self.tracker, self.resolution = tracker, resolution

    def forward(self, features, query_points, query_features):
        out = self.tracker.track_features(features, query_points, self.resolution, query_features=query_features)
        return tuple(out[k] for k in OUTPUTS)


@dataclass
class GraphSpec:
    """One graph to export: the module, example inputs by name, output names, and the dynamic axes of every
    input and output ({name: {axis: dimension name}}; dimensions B, T, N)."""

    module: nn.Module
    inputs: dict[str, torch.Tensor]
    outputs: tuple[str, ...]
    axes: dict[str, dict[int, str]] = field(default_factory=dict)


def example_inputs(tracker: ChronoTracker, resolution: tuple[int, int], batch: int, frames: int, queries: int,
                   seed: int = 0) -> dict[str, torch.Tensor]:
    """Inputs of every graph, consistent with each other: ``video`` [B, T, H, W, 3] in [-1, 1] (smooth random
    content: noise at 1/8 of the size, resized), ``query_points`` [B, N, 3] (t, y, x) inside it, ``features``
    [B, T, g, g, C] and ``query_features`` [B, N, C] (random, L2-normalised)."""
    g = torch.Generator().manual_seed(seed)
    H, W = resolution
    coarse = torch.rand(batch * frames, 3, max(2, H // 8), max(2, W // 8), generator=g)
    video = F.interpolate(coarse, size=(H, W), mode="bilinear", align_corners=False) * 2 - 1
    video = video.reshape(batch, frames, 3, H, W).permute(0, 1, 3, 4, 2).contiguous()
    t = torch.randint(0, frames, (batch, queries), generator=g).float()
    query_points = torch.stack([t, torch.rand(batch, queries, generator=g) * H,
                                torch.rand(batch, queries, generator=g) * W], dim=-1)
    grid, channels = tracker.grid_size, tracker.feature_channels
    features = F.normalize(torch.randn(batch, frames, grid, grid, channels, generator=g), dim=-1)
    query_features = F.normalize(torch.randn(batch, queries, channels, generator=g), dim=-1)
    return {"video": video, "query_points": query_points, "features": features, "query_features": query_features}


def graph_specs(tracker: ChronoTracker, resolution: tuple[int, int]) -> dict[str, GraphSpec]:
    """The four graphs of a bundle (:mod:`chrono.deploy.bundle`) of an :func:`exportable` tracker."""
    x = example_inputs(tracker, resolution, EXAMPLE_BATCH, EXAMPLE_FRAMES, EXAMPLE_QUERIES)
    bt, bn = {0: "B", 1: "T"}, {0: "B", 1: "N"}
    answer = {k: {0: "B", 1: "N", 2: "T"} for k in OUTPUTS}
    pick = lambda *names: {n: x[n] for n in names}  # noqa: E731
    return {
        "full": GraphSpec(ForwardGraph(tracker), pick("video", "query_points"), OUTPUTS,
                          {"video": bt, "query_points": bn, **answer}),
        "features": GraphSpec(FeaturesGraph(tracker), pick("video"), ("features",), {"video": bt, "features": bt}),
        "queries": GraphSpec(QueriesGraph(tracker, resolution), pick("features", "query_points"), ("query_features",),
                             {"features": bt, "query_points": bn, "query_features": bn}),
        "head": GraphSpec(HeadGraph(tracker, resolution), pick("features", "query_points", "query_features"), OUTPUTS,
                          {"features": bt, "query_points": bn, "query_features": bn, **answer}),
    }


def _require(module: str) -> None:
    try:
        __import__(module)
    except ImportError:
        raise ExportError(f"exporting needs the {module} package: {INSTALL_HINT}") from None


@contextlib.contextmanager
def _quiet():
    """Silence the exporter's progress prints, its logging and its warnings (its errors still raise)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def fixed_axes(path: Path, spec: GraphSpec) -> list[str]:
    """The axes of ``spec`` meant to be dynamic that the saved graph at ``path`` holds fixed ("input video axis
    1 = 4"); empty when every one stayed symbolic."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    frozen = []
    for kind, values in (("input", model.graph.input), ("output", model.graph.output)):
        for value in values:
            dims = value.type.tensor_type.shape.dim
            for axis in spec.axes.get(value.name, {}):
                if axis >= len(dims) or not dims[axis].dim_param:
                    size = dims[axis].dim_value if axis < len(dims) else "missing"
                    frozen.append(f"{kind} {value.name} axis {axis} = {size}")
    return frozen


def export_graph(spec: GraphSpec, path: Path, info: ModelInfo, opset: int = OPSET, attention: str = "ort") -> None:
    """Export one graph to ``path`` (a single file, weights inside, written atomically) with ``info`` as its
    metadata; raises
    :class:`ExportError` when the exporter fails or fixes a dynamic axis."""
    dims: dict[str, torch.export.Dim] = {}
    dynamic = {name: {axis: dims.setdefault(d, torch.export.Dim(d, min=1)) for axis, d in spec.axes[name].items()}
               for name in spec.inputs}
    table = None
    if attention == "ort":
        from chrono.deploy.ort_attention import translation_table

        table = translation_table()
    try:
        with _quiet(), torch.no_grad():
            program = torch.onnx.export(
                spec.module, tuple(spec.inputs.values()), dynamo=True, opset_version=opset, external_data=False,
                input_names=list(spec.inputs), output_names=list(spec.outputs), dynamic_shapes=dynamic,
                custom_translation_table=table, verbose=False,
            )
    except Exception as err:  # noqa: BLE001 - the exporter raises many kinds; each means this graph did not export
        first = next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)
        raise ExportError(f"{info.graph} graph: torch.onnx.export failed: {type(err).__name__}: {first[:300]}") from err
    program.model.metadata_props[METADATA_KEY] = info.to_json()
    with atomic_path(path) as tmp:
        program.save(str(tmp), external_data=False)
        frozen = fixed_axes(tmp, spec)
        if frozen:
            raise ExportError(f"{info.graph} graph: the exporter fixed axes meant to be dynamic ({', '.join(frozen)}); "
                              "the graph would answer wrongly at other sizes")


def model_info(model: ChronoTracker, graph: str, resolution: tuple[int, int], opset: int = OPSET,
               attention: str = "ort", source: str = "") -> ModelInfo:
    """The metadata of ``graph`` exported from the :func:`exportable` ``model`` for ``resolution`` videos."""
    return ModelInfo(graph=graph, resolution=tuple(int(v) for v in resolution), grid=model.grid_size,
                     channels=model.feature_channels, input_size=model.cfg.input_size, precision="fp32",
                     opset=opset, attention=attention, source=source, chrono=chrono.__version__)


def export_one(model: ChronoTracker, graph: str, path: Path, resolution: tuple[int, int], opset: int = OPSET,
               attention: str = "ort", source: str = "") -> None:
    """Export the graph ``graph`` (:data:`chrono.deploy.bundle.GRAPHS`) of the :func:`exportable` ``model`` alone to
    ``path``, unchecked (:func:`export_bundle` exports and checks a whole bundle)."""
    export_graph(graph_specs(model, resolution)[graph], path, model_info(model, graph, resolution, opset, attention,
                                                                          source), opset, attention)


@dataclass
class ExportReport:
    """What :func:`export_bundle` wrote and measured: paths by graph (and the int8 ones), file sizes, the
    deviation of each checked path from PyTorch (``full``: the whole-forward graph; ``split``: features ->
    queries -> head), and seconds spent."""

    paths: dict[str, Path]
    int8_paths: dict[str, Path] | None
    sizes: dict[str, int]
    checks: dict[str, Deviation]
    seconds: dict[str, float]
    info: ModelInfo


def check_answers(name: str, ref: dict, got: dict, strict: bool = True) -> Deviation:
    """The deviation of ``got`` from ``ref``; :class:`ExportError` when a strict check exceeds the tolerances
    (:data:`CHECK_TRACKS_PX`, :data:`CHECK_LOGITS`) or any check has a non-finite value."""
    dev = deviation(ref, got)
    finite = all(torch.isfinite(torch.as_tensor(got[k])).all() for k in OUTPUTS)
    if not finite or (strict and (dev.track_max_px > CHECK_TRACKS_PX or dev.logit_max > CHECK_LOGITS)):
        raise ExportError(
            f"check of the {name} graphs on a random clip failed: ONNX Runtime vs PyTorch {dev.brief()}"
            + ("" if finite else ", non-finite outputs")
            + f" (tolerance {CHECK_TRACKS_PX:g} px, logits {CHECK_LOGITS:g})"
        )
    return dev


def check_bundle(tracker: ChronoTracker, path: Path, resolution: tuple[int, int], precision: str = "fp32",
                 seed: int = 0, threads: int | None = None) -> dict[str, Deviation]:
    """Run the bundle at ``path`` in ONNX Runtime on a random clip (B = 1, T = :data:`CHECK_FRAMES`,
    N = :data:`CHECK_QUERIES`: other sizes than the traced example's) and compare with ``tracker`` (float32, on
    the CPU; the export head answers bitwise like the fast one) in PyTorch:
    the whole-forward graph (``full``) and the streaming parts chained (``split``). float32 must agree within
    the tolerances; int8 is only measured (its deviation is the price of int8) and must be finite."""
    from chrono.deploy.runtime import OnnxTracker

    x = example_inputs(tracker, resolution, 1, CHECK_FRAMES, CHECK_QUERIES, seed=seed + 1)
    with torch.no_grad():
        ref = tracker(x["video"], x["query_points"])
    runtime = OnnxTracker(path, device="cpu", precision=precision, threads=threads)
    whole = runtime(x["video"], x["query_points"])
    split = runtime.track_features(runtime.extract_features(x["video"]), x["query_points"], resolution)
    strict = precision == "fp32"
    label = "" if strict else f"{precision} "
    return {"full": check_answers(f"{label}whole-forward", ref, whole, strict),
            "split": check_answers(f"{label}features -> queries -> head", ref, split, strict)}


def export_bundle(
    tracker: ChronoTracker,
    out: str | Path,
    resolution: tuple[int, int] = (256, 256),
    opset: int = OPSET,
    attention: str = "ort",
    int8: bool = False,
    source: str = "",
    seed: int = 0,
    threads: int | None = None,
    say: Callable[[str], None] = lambda msg: None,
) -> ExportReport:
    """Export ``tracker`` as the bundle whose whole-forward file is ``out`` (:mod:`chrono.deploy.bundle`), check
    it through ONNX Runtime against PyTorch (:func:`check_bundle`), and only then move its files into place
    (all together; nothing is left behind on failure). ``int8``: also the int8 bundle beside it
    (:mod:`chrono.deploy.quantize`), measured the same way.

    Args:
      tracker: any :class:`ChronoTracker` (it is copied: :func:`exportable`).
      out: path of the whole-forward file, ``X.onnx``.
      resolution: (H, W) of the ``video`` input, fixed in the graphs.
      opset: ONNX opset (>= 20).
      attention: ``ort`` (the ViT's attention as ONNX Runtime's fused operator; ONNX Runtime only) or ``onnx``
        (standard operators; any runtime, but [B * T, heads, L, L] scores in memory).
      source: the checkpoint's name, stored in the metadata.
      seed: of the check clip.
      threads: ONNX Runtime threads of the check (None: its default).
      say: progress messages.
    """
    for module in ("onnx", "onnxscript", "onnxruntime"):
        _require(module)
    if attention not in ATTENTION:
        raise ExportError(f"attention={attention}: expected one of {', '.join(ATTENTION)}")
    if opset < OPSET:
        raise ExportError(f"opset={opset}: the query sample (GridSample on a 5-D input) needs opset >= {OPSET}")
    H, W = (int(v) for v in resolution)
    if H < 1 or W < 1:
        raise ExportError(f"resolution=[{H},{W}]: expected two positive sizes")
    model = exportable(tracker)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    if weight_bytes > MAX_WEIGHT_BYTES:
        raise ExportError(f"the tracker's weights take {weight_bytes / 1e9:.1f} GB: more than one ONNX file holds "
                          "(2 GB); backbones up to ViT-L export")
    out = Path(out)
    final = bundle_paths(out)
    final8 = bundle_paths(int8_path(out)) if int8 else None
    seconds: dict[str, float] = {}
    specs = graph_specs(model, (H, W))
    with staged_files(out.parent, out.name) as stage:
        for i, name in enumerate(GRAPHS, 1):
            say(f"exporting graph {i}/{len(GRAPHS)}: {name} (opset {opset}, attention {attention})")
            start = time.perf_counter()
            export_graph(specs[name], stage / final[name].name, model_info(model, name, (H, W), opset, attention,
                                                                           source), opset, attention)
            seconds[f"export_{name}"] = time.perf_counter() - start
        say(f"checking the graphs in ONNX Runtime against PyTorch on a random clip (T={CHECK_FRAMES}, "
            f"N={CHECK_QUERIES})")
        start = time.perf_counter()
        checks = check_bundle(model, stage / out.name, (H, W), seed=seed, threads=threads)
        seconds["check"] = time.perf_counter() - start
        if final8 is not None:
            from chrono.deploy.quantize import quantize_bundle

            say("int8: quantizing the linear layers' weights (dynamic quantization)")
            start = time.perf_counter()
            quantize_bundle(stage / out.name, stage / final8["full"].name)
            seconds["quantize"] = time.perf_counter() - start
            say("int8: measuring its deviation from PyTorch float32 on the same clip")
            int8_checks = check_bundle(model, stage / final8["full"].name, (H, W), "int8", seed, threads)
            checks.update({f"int8_{k}": v for k, v in int8_checks.items()})
        sizes = {p.name: p.stat().st_size for p in stage.iterdir()}
    return ExportReport(final, final8, sizes, checks, seconds, model_info(model, "full", (H, W), opset, attention,
                                                                          source))
