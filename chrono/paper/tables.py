"""The paper's tables filled with measured figures: published, measured and their difference per row, rendered in
the paper's layout as markdown and CSV (and a long CSV of every figure with its source).

Figures are in percent. A row without a measurement says ``no run``; a figure the paper does not give is ``–``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from chrono.paper.measured import Measurement
from chrono.paper.published import MODELS, Row, Table
from chrono.results import table_csv

NO_RUN = "no run"
DASH = "–"


@dataclass
class Cell:
    """One (row, column): published figures (metric order; None where not published), the measurement (if any)
    and how many runs measured it."""

    published: tuple[float, ...] | None
    measurement: Measurement | None = None
    runs: int = 0

    def measured(self, metrics: Mapping[str, str]) -> tuple[float | None, ...] | None:
        """Measured figures in percent, metric order (None where the run did not give that metric)."""
        if self.measurement is None:
            return None
        got = self.measurement.metrics
        return tuple(100 * got[name] if name in got else None for name in metrics)

    def difference(self, metrics: Mapping[str, str]) -> tuple[float | None, ...] | None:
        measured = self.measured(metrics)
        if measured is None or self.published is None:
            return None
        return tuple(None if m is None else m - p for m, p in zip(measured, self.published))


@dataclass
class FilledTable:
    table: Table
    rows: list[tuple[Row, dict[str, Cell]]] = field(default_factory=list)  # column key -> cell

    @property
    def measured_cells(self) -> int:
        return sum(cell.measurement is not None for _, cells in self.rows for cell in cells.values())


def fill(table: Table, found: Mapping[tuple[str, str], tuple[Measurement, int]],
         benchmark_names: Mapping[str, str] | None = None) -> FilledTable:
    """``table`` with the newest measurement of each cell (``found``: :func:`chrono.paper.measured.newest`);
    ``benchmark_names`` maps the paper's benchmarks to the names runs use (e.g. davis -> synthetic)."""
    names = benchmark_names or {}
    filled = FilledTable(table)
    for row in table.rows:
        cells = {}
        for column in table.columns:
            measurement, runs = found.get((row.model, f"{names.get(column.benchmark, column.benchmark)}/"
                                                       f"{column.query_mode}"), (None, 0))
            cells[column.key] = Cell(row.published.get(column.key), measurement, runs)
        filled.rows.append((row, cells))
    return filled


# ------------------------------------------------------------------------------------------------------ text


def _published(value: float) -> str:
    text = f"{value:.2f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _figures(values: tuple[float | None, ...] | None, fmt, metrics: Mapping[str, str]) -> str:
    """``a b c d e / f`` (the last figure after a slash when there are several)."""
    if values is None:
        return DASH
    parts = [DASH if v is None else fmt(v) for v in values]
    return " ".join(parts[:-1]) + " / " + parts[-1] if len(parts) > 1 else parts[0]


def row_texts(filled: FilledTable, row: Row, cells: Mapping[str, Cell]) -> list[tuple[str, list[str]]]:
    """The three lines of a row: (kind, cell texts per column) for published, measured, difference."""
    metrics = filled.table.metrics
    columns = filled.table.columns
    return [
        ("published", [_figures(cells[c.key].published, _published, metrics) for c in columns]),
        ("measured", [NO_RUN if cells[c.key].measurement is None
                      else _figures(cells[c.key].measured(metrics), lambda v: f"{v:.1f}", metrics) for c in columns]),
        ("difference", [_figures(cells[c.key].difference(metrics), lambda v: f"{v:+.1f}", metrics) for c in columns]),
    ]


def _link(target: str, relative_to: Path | None) -> str:
    if "://" in target or relative_to is None:
        return target
    return os.path.relpath(target, relative_to)


def table_markdown(filled: FilledTable, links_from: Path | None = None) -> str:
    """The table in the paper's layout (three lines per row: published, measured, difference), its note and the
    source of every measured cell with a link to the run's worst/best videos when it drew them."""
    table = filled.table
    header = [table.row_header, "", *(c.label for c in table.columns)]
    lines = [f"## {table.title}", ""]
    if table.note:
        lines += [table.note, ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row, cells in filled.rows:
        for i, (kind, texts) in enumerate(row_texts(filled, row, cells)):
            lines.append("| " + " | ".join([row.label if i == 0 else "", kind, *texts]) + " |")
    sources = []
    for row, cells in filled.rows:
        for column in table.columns:
            cell = cells[column.key]
            if cell.measurement is None:
                continue
            m = cell.measurement
            more = f" (newest of {cell.runs})" if cell.runs > 1 else ""
            measured_on = f" (measured on {m.key})" if m.key != column.key else ""
            line = f"- {row.label}, {column.label}{measured_on}: {m.source}{more}"
            if m.gallery:
                line += f"; worst and best videos: [{Path(m.gallery).name}]({_link(m.gallery, links_from)})"
            sources.append(line)
    lines += ["", "Measured by:" if sources else "No run measured any row of this table.", *sources, ""]
    return "\n".join(lines) + "\n"


def table_rows(filled: FilledTable) -> list[dict[str, Any]]:
    """The table as CSV rows in the paper's layout: row, model, kind, status, then one numeric column per
    (column, metric), e.g. ``DAVIS strided δ_avg``."""
    table = filled.table
    out = []
    for row, cells in filled.rows:
        status = "measured" if any(c.measurement for c in cells.values()) else NO_RUN
        for kind in ("published", "measured", "difference"):
            line: dict[str, Any] = {"row": row.label, "model": row.model, "kind": kind, "status": status}
            for column in table.columns:
                cell = cells[column.key]
                values = {"published": cell.published, "measured": cell.measured(table.metrics),
                          "difference": cell.difference(table.metrics)}[kind]
                for i, label in enumerate(table.metrics.values()):
                    line[f"{column.label} {label}"] = None if values is None else values[i]
            out.append(line)
    return out


def table_csv_text(filled: FilledTable) -> str:
    return table_csv(table_rows(filled))


def long_rows(filled: FilledTable) -> list[dict[str, Any]]:
    """Every figure of the table on its own line: table, row, model, column, metric, published, measured,
    difference, source, gallery."""
    table = filled.table
    out = []
    for row, cells in filled.rows:
        for column in table.columns:
            cell = cells[column.key]
            measured, diff = cell.measured(table.metrics), cell.difference(table.metrics)
            for i, label in enumerate(table.metrics.values()):
                m = cell.measurement
                out.append({
                    "table": table.key, "row": row.label, "model": row.model, "column": column.label, "metric": label,
                    "published": None if cell.published is None else cell.published[i],
                    "measured": None if measured is None else measured[i],
                    "difference": None if diff is None else diff[i],
                    "source": m.source if m else NO_RUN, "gallery": (m.gallery if m else None) or "",
                })
    return out


def model_names() -> dict[str, str]:
    """Model key -> display name (what ``label=`` accepts)."""
    return {key: name for key, (name, _) in MODELS.items()}
