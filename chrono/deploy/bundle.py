"""The files of an exported Chrono model and the facts stored in them.

``python -m chrono.export out=chrono.onnx`` writes a *bundle*: the whole reference forward and its three
streaming parts, beside each other:

==================  ==============================================================================  =========================
file                inputs -> outputs                                                               use
==================  ==============================================================================  =========================
``chrono.onnx``     video [B, T, H, W, 3], query_points [B, N, 3] -> tracks [B, N, T, 2],             ``tracker(video, queries)``
                    occlusion [B, N, T], expected_dist [B, N, T]
``*.features.onnx`` video [B, T, H, W, 3] -> features [B, T, g, g, C]                                 a window of frames
``*.queries.onnx``  features [B, T, g, g, C], query_points [B, N, 3] -> query_features [B, N, C]       query features
``*.head.onnx``     features, query_points, query_features -> tracks, occlusion, expected_dist       the head
==================  ==============================================================================  =========================

Videos are float32 in [-1, 1] at the fixed export resolution H x W; query points (t, y, x) float32 in its
pixels (t a frame index into the given frames); tracks (x, y) in its pixels; occlusion and expected_dist logits.
B, T and N are dynamic. An int8 bundle (``precision=int8``) sits beside it as ``chrono.int8.onnx``,
``chrono.int8.features.onnx``, ...

Every file carries its facts as ONNX metadata (``metadata_props``, keys ``chrono.*``): :class:`ModelInfo`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from chrono.errors import ChronoError

GRAPHS = ("full", "features", "queries", "head")
PRECISIONS = ("fp32", "int8")
OUTPUTS = ("tracks", "occlusion", "expected_dist")
METADATA_KEY = "chrono.model"
INSTALL_HINT = "pip install -e '.[export]'"


class OnnxModelError(ChronoError):
    """An ONNX model the suite cannot use (missing, unreadable, not a Chrono export, or the wrong kind)."""


def bundle_paths(path: str | Path) -> dict[str, Path]:
    """The four files of the bundle whose whole-forward graph is ``path`` (``X.onnx`` -> ``X.onnx``,
    ``X.features.onnx``, ``X.queries.onnx``, ``X.head.onnx``), by graph name."""
    path = Path(path)
    stem = path.name[: -len(".onnx")] if path.name.endswith(".onnx") else path.name
    return {g: path if g == "full" else path.with_name(f"{stem}.{g}.onnx") for g in GRAPHS}


def int8_path(path: str | Path) -> Path:
    """The int8 bundle's whole-forward file beside the float32 one: ``X.onnx`` -> ``X.int8.onnx``."""
    path = Path(path)
    stem = path.name[: -len(".onnx")] if path.name.endswith(".onnx") else path.name
    return path.with_name(f"{stem}.int8.onnx")


@dataclass(frozen=True)
class ModelInfo:
    """What an exported graph was made from and for.

    resolution: (H, W) of the ``video`` input (fixed); grid: g, feature cells per side; channels: C;
    input_size: the ViT's input size; precision: ``fp32`` or ``int8``; opset: the ONNX opset; attention:
    ``ort`` (the ViT's attention as ``com.microsoft.MultiHeadAttention``: ONNX Runtime only) or ``onnx``
    (standard operators only); source: the checkpoint's file name; chrono: the suite's version.
    """

    graph: str
    resolution: tuple[int, int]
    grid: int
    channels: int
    input_size: int
    precision: str
    opset: int
    attention: str
    source: str
    chrono: str

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str, where: str) -> "ModelInfo":
        try:
            d = json.loads(text)
            d["resolution"] = tuple(int(v) for v in d["resolution"])
            return cls(**d)
        except (ValueError, TypeError, KeyError) as err:
            raise OnnxModelError(f"{where}: unreadable Chrono metadata ({err})") from None

    def same_model(self, other: "ModelInfo") -> bool:
        """True when both graphs come from the same export (all but the graph name agree)."""
        return {**asdict(self), "graph": None} == {**asdict(other), "graph": None}
