"""The paper's tables with measured figures: ``python -m chrono.report`` (``make paper-tables``).

    python -m chrono.report                                      # the MLflow store's chrono-eval / chrono-train runs
    python -m chrono.report mlflow.experiments=[my-sweep] out=paper/  # other experiments, files into paper/
    python -m chrono.report mlflow.enabled=false results=[outputs/evaluate-multirun/2025-06-01_10-00-00]
    python -m chrono.report benchmark_names.davis=synthetic backbone_names.vits=tiny   # CPU miniatures

Reads the runs (:mod:`chrono.paper.measured`), fills every table of :mod:`chrono.paper.published` with the newest
measurement of each cell (:mod:`chrono.paper.tables`), prints the markdown and writes ``paper_tables.md``,
``<table>.csv``, ``<table>.png`` (:mod:`chrono.paper.chart`) and ``measurements.csv`` (every figure with its source).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chrono import mlflow_runs
from chrono.cli import hydra_command
from chrono.config import register
from chrono.files import write_text_atomic
from chrono.paper.measured import Matcher, ReportError, newest, read_mlflow, read_results_file, results_files
from chrono.paper.published import TABLES
from chrono.paper.tables import fill, long_rows, table_csv_text, table_markdown
from chrono.results import table_csv

register()


def _out_dir(cfg) -> Path:
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import to_absolute_path

    if cfg.out:
        return Path(to_absolute_path(str(cfg.out)))
    return Path(HydraConfig.get().runtime.output_dir)


def run(cfg, out: Path) -> dict[str, Any]:
    """Collect, fill, print and write; returns {table key: number of measured cells} and the files."""
    from hydra.utils import to_absolute_path
    from omegaconf import OmegaConf

    names = list(cfg.tables) if cfg.tables else list(TABLES)
    unknown = [n for n in names if n not in TABLES]
    if unknown:
        raise ReportError(f"tables={unknown}: no such table; the tables are {list(TABLES)}")
    matcher = Matcher(dict(OmegaConf.to_container(cfg.backbone_names)))
    measurements, notes = [], []
    for path, label in results_files(cfg.results, to_absolute_path):
        measurements += read_results_file(path, matcher, label)
    if cfg.mlflow.enabled:
        uri = mlflow_runs.tracking_uri()
        found, notes = read_mlflow(list(cfg.mlflow.experiments), matcher, uri)
        measurements += found
    cells = newest(measurements)
    benchmark_names = dict(OmegaConf.to_container(cfg.benchmark_names))
    filled = [fill(TABLES[name], cells, benchmark_names) for name in names]

    out.mkdir(parents=True, exist_ok=True)
    intro = ["# The paper's tables: published beside measured", "",
             f"{len(measurements)} measurements read" + (f" from MLflow ({mlflow_runs.tracking_uri()}, experiments "
             f"{', '.join(cfg.mlflow.experiments)})" if cfg.mlflow.enabled else "")
             + (f" and {len(cfg.results)} results entries" if cfg.results else "") + ".", *notes, ""]
    markdown = "\n".join(intro) + "\n" + "\n".join(table_markdown(f, links_from=out) for f in filled)
    files = {"markdown": write_text_atomic(out / "paper_tables.md", markdown)}
    long = []
    for f in filled:
        files[f"{f.table.key}.csv"] = write_text_atomic(out / f"{f.table.key}.csv", table_csv_text(f))
        long += long_rows(f)
        if cfg.chart:
            from chrono.paper.chart import bar_chart
            from chrono.video_io import write_png

            files[f"{f.table.key}.png"] = write_png(out / f"{f.table.key}.png", bar_chart(f))
    files["measurements.csv"] = write_text_atomic(out / "measurements.csv", table_csv(long))
    print(markdown, end="")
    print(f"written: {', '.join(str(p) for p in files.values())}")
    return {"measured_cells": {f.table.key: f.measured_cells for f in filled}, "files": files}


@hydra_command("report", prog="chrono.report")
def main(cfg) -> dict[str, Any]:
    """Print and write the paper's tables with the measured figures (see the module docstring)."""
    return run(cfg, _out_dir(cfg))


if __name__ == "__main__":
    main()
