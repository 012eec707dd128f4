"""A bar chart of a filled table, drawn with PIL (a dependency already; matplotlib is not needed for bars).

One panel per column (benchmark and query mode), one group per row: the published ``<δ^x_avg>`` (grey) above the
measured one (blue), each with its value, the difference after the measured value; ``no run`` where nothing was
measured and ``not published`` where the paper gives no figure. Scale 0-100 % with grid lines every 25.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from chrono.paper.tables import FilledTable

PUBLISHED = (150, 150, 150)
MEASURED = (31, 119, 180)
GRID = (225, 225, 225)
TEXT = (20, 20, 20)
FAINT = (130, 130, 130)
LABEL_W, PANEL_W, BAR_W = 250, 250, 190  # px: row labels, one panel, the 0-100 % scale
TOP, ROW_H, BAR_H, BOTTOM = 78, 36, 11, 28


def _ascii(text: str) -> str:
    """PIL's built-in font has no Greek letters."""
    return text.replace("δ", "delta").replace("–", "-")


def bar_chart(filled: FilledTable) -> np.ndarray:
    """The chart of ``filled`` (its last metric, ``<δ^x_avg>``) as an RGB image [H, W, 3] uint8."""
    table = filled.table
    metric = list(table.metrics)[-1]
    columns, rows = table.columns, filled.rows
    width = LABEL_W + PANEL_W * len(columns) + 10
    height = TOP + ROW_H * len(rows) + BOTTOM
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    draw.text((10, 8), _ascii(table.title), fill=TEXT, font=font)
    draw.rectangle((10, 30, 22, 40), fill=PUBLISHED)
    draw.text((28, 29), "published", fill=TEXT, font=font)
    draw.rectangle((110, 30, 122, 40), fill=MEASURED)
    draw.text((128, 29), f"measured (difference), {_ascii(table.metrics[metric])} in %", fill=TEXT, font=font)
    bottom = TOP + ROW_H * len(rows)
    for c, column in enumerate(columns):
        x0 = LABEL_W + PANEL_W * c
        draw.text((x0, TOP - 20), column.label, fill=TEXT, font=font)
        for tick in (0, 25, 50, 75, 100):
            x = x0 + BAR_W * tick / 100
            draw.line((x, TOP - 4, x, bottom), fill=GRID if tick else FAINT, width=1)
            draw.text((x - 6, bottom + 6), str(tick), fill=FAINT, font=font)
    for r, (row, cells) in enumerate(rows):
        y = TOP + ROW_H * r
        draw.text((10, y + ROW_H / 2 - 6), _ascii(row.label)[:40], fill=TEXT, font=font)
        for c, column in enumerate(columns):
            x0 = LABEL_W + PANEL_W * c
            cell = cells[column.key]
            published = None if cell.published is None else cell.published[-1]
            measured = cell.measured(table.metrics)
            measured = None if measured is None else measured[-1]
            for k, (value, color) in enumerate(((published, PUBLISHED), (measured, MEASURED))):
                top = y + 5 + k * (BAR_H + 3)
                if value is None:
                    missing = "not published" if k == 0 else ("no run" if cell.measurement is None else "-")
                    draw.text((x0 + 4, top - 1), missing, fill=FAINT, font=font)
                    continue
                end = x0 + BAR_W * min(max(value, 0.0), 100.0) / 100
                draw.rectangle((x0 + 1, top, max(end, x0 + 2), top + BAR_H), fill=color)
                text = f"{value:.1f}"
                if k == 1 and published is not None:
                    text += f" ({value - published:+.1f})"
                draw.text((end + 3, top - 1), text, fill=TEXT, font=font)
    return np.asarray(image)
