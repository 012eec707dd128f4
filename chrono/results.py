"""Tables of results: GitHub markdown (one decimal) and CSV (full precision) from rows of dicts."""

from __future__ import annotations

import csv
import io
from typing import Any, Iterable, Mapping, Sequence


def table_markdown(rows: Sequence[Mapping[str, Any]], columns: Iterable[str] | None = None) -> str:
    """A GitHub-markdown table of ``rows``; floats printed with one decimal."""
    columns = list(columns) if columns is not None else list(dict.fromkeys(c for row in rows for c in row))

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.1f}"
        return "" if value is None else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def table_csv(rows: Sequence[Mapping[str, Any]], columns: Iterable[str] | None = None) -> str:
    """CSV text of ``rows`` (full precision)."""
    columns = list(columns) if columns is not None else list(dict.fromkeys(c for row in rows for c in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
