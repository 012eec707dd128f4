"""The paper's published figures and its tables' layout, stored once (Kim et al., CVPR 2025, project page tables;
refiner-free, position accuracy at 256 x 256, percent).

A table has columns (benchmark, query mode), metrics (``<δ^0>`` .. ``<δ^4>`` = points within 1, 2, 4, 8, 16 px, and
``<δ^x_avg>``) and rows. A row names a *model* of :data:`MODELS`: the facts a run must have to fill it (its
tracker, and the backbone / adapter settings of the training run behind its checkpoint; see
:mod:`chrono.paper.measured`). Settings that older runs did not log take the reference's value
(:data:`FACT_DEFAULTS`): a run trained before ``adapter.type`` existed is an ``attention`` adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

# metric name (chrono.metrics) -> label, in the paper's order
DELTAS = {
    "pts_within_1": "δ^0", "pts_within_2": "δ^1", "pts_within_4": "δ^2", "pts_within_8": "δ^3",
    "pts_within_16": "δ^4", "average_pts_within_thresh": "δ_avg",
}
DELTA_AVG = {"average_pts_within_thresh": "δ_avg"}

# What a training run that did not log a setting used (the reference).
FACT_DEFAULTS = {"adapter.enabled": True, "adapter.type": "attention", "adapter.placement": "all"}


def _chrono(backbone: str, adapter_type: str = "attention", placement: str = "all") -> dict:
    return {"tracker": "chrono", "backbone.name": backbone, "adapter.enabled": True, "adapter.type": adapter_type,
            "adapter.placement": placement}


# model key -> (display name, the facts a run must have). ``backbone.name`` values are the paper's backbones;
# the report maps them to the names runs use (``backbone_names``, e.g. vits -> tiny for a CPU miniature).
MODELS: dict[str, tuple[str, dict]] = {
    "resnet18": ("ResNet-18", {"tracker": "chrono", "backbone.name": "resnet18"}),
    "tsm_resnet18": ("TSM-ResNet-18", {"tracker": "chrono", "backbone.name": "tsm_resnet18"}),
    "dinov2_vits": ("DINOv2 ViT-S/14", {"tracker": "chrono", "backbone.name": "vits", "adapter.enabled": False}),
    "dinov2_vitb": ("DINOv2 ViT-B/14", {"tracker": "chrono", "backbone.name": "vitb", "adapter.enabled": False}),
    "chrono_vits": ("Chrono ViT-S/14", _chrono("vits")),
    "chrono_vitb": ("Chrono ViT-B/14", _chrono("vitb")),
    "chrono_vits_conv3d": ("Chrono ViT-S/14, 3D convolution adapters", _chrono("vits", "conv3d")),
    "chrono_vits_conv1d": ("Chrono ViT-S/14, 1D convolution adapters", _chrono("vits", "conv1d")),
    "chrono_vits_early": ("Chrono ViT-S/14, adapters in early blocks", _chrono("vits", placement="early")),
    "chrono_vits_late": ("Chrono ViT-S/14, adapters in later blocks", _chrono("vits", placement="late")),
    "chrono_vits_alternate": ("Chrono ViT-S/14, adapters in alternate blocks", _chrono("vits", placement="alternate")),
    "zero_motion": ("zero motion (floor, not in the paper)", {"tracker": "zero_motion"}),
}


@dataclass(frozen=True)
class Column:
    benchmark: str  # the paper's benchmark: davis | kinetics | rgb_stacking
    query_mode: str  # first | strided
    label: str

    @property
    def key(self) -> str:
        return f"{self.benchmark}/{self.query_mode}"


@dataclass(frozen=True)
class Row:
    model: str  # a key of MODELS
    label: str  # the row's name in this table
    published: Mapping[str, tuple[float, ...]] = field(default_factory=dict)  # column key -> figures, metric order


@dataclass(frozen=True)
class Table:
    key: str  # file names: <key>.md / .csv / .png
    title: str
    columns: tuple[Column, ...]
    metrics: Mapping[str, str]  # metric name -> label, the order of every cell
    rows: tuple[Row, ...]
    note: str = ""
    row_header: str = "model"


KINETICS_FIRST = Column("kinetics", "first", "Kinetics first")
DAVIS_FIRST = Column("davis", "first", "DAVIS first")
KINETICS_STRIDED = Column("kinetics", "strided", "Kinetics strided")
DAVIS_STRIDED = Column("davis", "strided", "DAVIS strided")
RGB_STRIDED = Column("rgb_stacking", "strided", "RGB-Stacking strided")
MAIN_COLUMNS = (KINETICS_FIRST, DAVIS_FIRST, KINETICS_STRIDED, DAVIS_STRIDED)


def _main_row(model: str, *cells: tuple[float, ...]) -> Row:
    return Row(model, MODELS[model][0], dict(zip((c.key for c in MAIN_COLUMNS), cells)))


MAIN = Table(
    "main", "Backbones: position accuracy <δ^x> (refiner-free, 256 x 256)", MAIN_COLUMNS, DELTAS,
    (
        _main_row("resnet18", (8.6, 28.8, 56.5, 74.2, 83.3, 50.3), (9.0, 27.3, 54.9, 73.7, 84.1, 49.8),
                  (10.5, 35.3, 65.7, 81.3, 88.6, 56.3), (9.7, 31.1, 60.6, 78.3, 87.0, 53.3)),
        _main_row("tsm_resnet18", (7.8, 28.1, 55.2, 71.4, 80.2, 48.6), (7.3, 23.1, 46.7, 66.6, 79.2, 44.6),
                  (9.15, 33.2, 64.6, 79.2, 86.5, 54.5), (8.2, 26.8, 53.6, 73.5, 83.9, 49.2)),
        _main_row("dinov2_vits", (4.2, 13.6, 36.3, 65.9, 79.2, 39.8), (6.0, 19.9, 47.5, 73.7, 84.5, 46.3),
                  (4.9, 15.8, 41.9, 73.8, 86.0, 44.5), (7.3, 22.7, 52.9, 80.0, 89.5, 50.4)),
        # DAVIS strided as published: its δ_avg 54.4 is not the mean of its δ^0..4 (53.7), unlike every other cell
        _main_row("dinov2_vitb", (5.1, 16.0, 40.0, 67.9, 80.4, 41.9), (8.9, 24.7, 53.8, 77.0, 87.1, 50.3),
                  (5.9, 18.6, 45.9, 75.7, 86.9, 46.6), (10.0, 28.6, 59.5, 82.9, 87.4, 54.4)),
        _main_row("chrono_vits", (24.8, 46.2, 65.8, 77.5, 83.1, 59.5), (24.0, 49.2, 71.2, 82.8, 87.9, 63.0),
                  (32.2, 55.2, 73.9, 84.0, 88.7, 66.8), (29.7, 56.4, 76.7, 86.8, 90.9, 68.0)),
        _main_row("chrono_vitb", (26.0, 48.4, 68.2, 79.8, 85.3, 61.6), (26.1, 52.6, 74.5, 84.9, 90.0, 65.6),
                  (33.5, 57.2, 75.8, 85.8, 90.2, 68.5), (31.8, 59.2, 78.8, 88.4, 92.2, 70.1)),
        _main_row("zero_motion"),
    ),
    note="Cells: δ^0 δ^1 δ^2 δ^3 δ^4 / δ_avg (percent of visible points within 1, 2, 4, 8, 16 px, and their "
         "mean).",
    row_header="backbone",
)

def _ablation(key: str, what: str, rows: tuple[tuple[str, str, float | None], ...], note: str,
              row_header: str) -> Table:
    """A one-figure table of Chrono ViT-S/14 variants on DAVIS strided; rows (model, label, published or None)."""
    return Table(key, f"Ablation: {what} (Chrono ViT-S/14, DAVIS strided <δ^x_avg>)", (DAVIS_STRIDED,), DELTA_AVG,
                 tuple(Row(model, label, {} if figure is None else {DAVIS_STRIDED.key: (figure,)})
                       for model, label, figure in rows), note, row_header)


ADAPTER_TYPE = _ablation("adapter_type", "adapter type", (
    ("chrono_vits", "temporal 1D attention (the reference)", 68.0),
    ("chrono_vits_conv3d", "3D convolution", 66.4),
    ("chrono_vits_conv1d", "1D convolution", 65.9),
    ("dinov2_vits", "none (DINOv2 ViT-S/14)", 50.4),
), "Published figures from a summary of the paper; the no-adapter row is the backbones table's.", "adapter")

PLACEMENT = _ablation("placement", "adapter placement", (
    ("chrono_vits", "all blocks (the reference)", 68.0),
    ("chrono_vits_late", "later blocks", 65.8),
    ("chrono_vits_early", "early blocks", 61.7),
    ("chrono_vits_alternate", "alternate blocks", None),
), "Published figures from a summary of the paper; the alternating variant is mentioned without a figure.",
    "adapters after")

RGB_STACKING = Table(
    "rgb_stacking", "RGB-Stacking (strided <δ^x_avg>)", (RGB_STRIDED,), DELTA_AVG,
    (
        Row("chrono_vitb", MODELS["chrono_vitb"][0], {"rgb_stacking/strided": (86.0,)}),
        Row("chrono_vits", MODELS["chrono_vits"][0], {"rgb_stacking/strided": (84.3,)}),
        Row("zero_motion", MODELS["zero_motion"][0]),
    ),
)

TABLES: dict[str, Table] = {t.key: t for t in (MAIN, ADAPTER_TYPE, PLACEMENT, RGB_STACKING)}

# Not a table cell: throughput as published (GPU not stated), for the reader's reference.
THROUGHPUT_POINTS_PER_S = {"Chrono ViT-B/14": 26140, "TAPIR": 2097}
