"""A Hydra callback that turns a multirun into one MLflow parent run and one results table.

``on_multirun_start`` opens the parent run and tells the jobs its id (environment variable and a file in the
sweep folder, see :func:`chrono.mlflow_runs.parent_run_id`), so each job logs its own run as a child.
``on_multirun_end`` reads every job's result JSON file (``result_file`` inside the job folder), builds one
table, prints it, writes it as ``summary.md`` and ``summary.csv`` in the sweep folder and logs both (and the
table) to the parent run.

A result file is either flat (``{"loss": 0.3, "aj": 0.5}``: one row per job) or keyed
(``{"davis/first": {...}, "davis/strided": {...}}``: one row per key, the key in column ``key_column``).
``id_fields`` adds columns read from each job's composed config (``.hydra/config.yaml``, dotted paths);
without it the job's overrides make one column. ``columns`` picks and renames metrics, ``percent`` lists those
printed x 100; ``columns: headline`` is the headline metrics of :data:`chrono.metrics.TABLE_LABELS` in
percent. Used by ``conf/evaluate.yaml``; training sweeps configure it with their own result files.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from chrono import mlflow_runs
from chrono.files import write_text_atomic
from chrono.metrics import TABLE_LABELS
from chrono.results import table_csv, table_markdown


def _job_dirs(sweep_dir: Path) -> list[Path]:
    """Job folders of a sweep (those holding a composed config), in job order."""
    dirs = [p.parent.parent for p in sweep_dir.glob("**/.hydra/config.yaml")]

    def order(path: Path):
        rel = path.relative_to(sweep_dir).parts
        return tuple((0, int(p)) if p.isdigit() else (1, p) for p in rel)

    return sorted(set(dirs), key=order)


def _select(cfg: Any, dotted: str) -> Any:
    value = OmegaConf.select(cfg, dotted, default=None)
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig) else value


def collect_rows(
    sweep_dir: str | Path,
    result_file: str = "results.json",
    key_column: str | None = "key",
    id_fields: Mapping[str, str] | None = None,
    columns: Mapping[str, str] | None = None,
    percent: Sequence[str] = (),
    sort_by: Sequence[str] = (),
) -> tuple[list[dict[str, Any]], list[str]]:
    """The table of a sweep: (rows with display column names, job folders that have no result file)."""
    sweep_dir = Path(sweep_dir)
    rows, missing = [], []
    for job in _job_dirs(sweep_dir):
        result_path = job / result_file
        if not result_path.is_file():
            missing.append(str(job))
            continue
        ident: dict[str, Any] = {}
        if id_fields:
            job_cfg = OmegaConf.load(job / ".hydra" / "config.yaml")
            ident = {label: _select(job_cfg, dotted) for label, dotted in id_fields.items()}
        else:
            overrides_file = job / ".hydra" / "overrides.yaml"
            overrides = OmegaConf.load(overrides_file) if overrides_file.is_file() else []
            ident = {"job": " ".join(str(o) for o in overrides) or job.name}
        results = json.loads(result_path.read_text())
        keyed = results and all(isinstance(v, Mapping) for v in results.values())
        for key, metrics in (results.items() if keyed else [(None, results)]):
            row = dict(ident)
            if keyed:
                row[key_column or "key"] = key
            names = [c for c in columns if c in metrics] if columns is not None else list(metrics)
            for name in names:
                value = metrics[name]
                if name in percent and isinstance(value, (int, float)):
                    value = 100.0 * value
                row[(columns or {}).get(name, name)] = value
            rows.append(row)
    if sort_by:
        rows.sort(key=lambda r: tuple(str(r.get(c, "")) for c in sort_by))
    return rows, missing


class SweepSummary(Callback):
    """Hydra callback: MLflow parent run for a multirun and one table of the jobs' results (see module doc)."""

    def __init__(
        self,
        result_file: str = "results.json",
        key_column: str | None = "key",
        id_fields: Mapping[str, str] | None = None,
        columns: Mapping[str, str] | str | None = None,
        percent: Sequence[str] = (),
        sort_by: Sequence[str] = (),
        experiment: str = "chrono-sweeps",
        mlflow_enabled: bool = True,
        name: str = "summary",
    ):
        if columns == "headline":  # the headline metrics (chrono.metrics.TABLE_LABELS) in percent, and the count
            columns, percent = {**TABLE_LABELS, "num_videos": "videos"}, [*TABLE_LABELS, *percent]
        self.table = dict(
            result_file=result_file, key_column=key_column, id_fields=dict(id_fields or {}) or None,
            columns=dict(columns) if columns is not None else None, percent=list(percent), sort_by=list(sort_by),
        )
        self.experiment = experiment
        self.mlflow_enabled = mlflow_enabled
        self.name = name
        self.run: mlflow_runs.MlflowRun | None = None
        self._on_exit = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        # Hydra skips on_multirun_end when a job failed (the error propagates once every job has run):
        # the table of what did finish is then written at exit and the parent run marked FAILED.
        self._on_exit = functools.partial(self._finish, sweep_dir, "FAILED")
        atexit.register(self._on_exit)
        if not self.mlflow_enabled:
            return
        self.run = mlflow_runs.start_run(
            self.experiment, run_name=f"sweep {sweep_dir.name}", tags={"sweep_dir": str(sweep_dir.resolve())}
        )
        self.run.log_params({"overrides": " ".join(config.hydra.overrides.task)})
        os.environ[mlflow_runs.PARENT_RUN_ENV] = self.run.run_id
        write_text_atomic(sweep_dir / mlflow_runs.PARENT_RUN_FILE, self.run.run_id + "\n")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self._on_exit is not None:
            atexit.unregister(self._on_exit)
            self._on_exit = None
        self._finish(Path(config.hydra.sweep.dir), status="FINISHED")

    def _finish(self, sweep_dir: Path, status: str) -> None:
        rows, missing = collect_rows(sweep_dir, **self.table)
        markdown = table_markdown(rows) if rows else "(no job wrote a result file)\n"
        md_path = write_text_atomic(sweep_dir / f"{self.name}.md", markdown)
        csv_path = write_text_atomic(sweep_dir / f"{self.name}.csv", table_csv(rows) if rows else "")
        failed = " (some jobs failed)" if status == "FAILED" else ""
        print(f"\nSweep results{failed} ({len(rows)} rows, {sweep_dir}):\n{markdown}", end="")
        if missing:
            print(f"no {self.table['result_file']} in: {', '.join(missing)}")
        print(f"table: {md_path} and {csv_path}")
        if self.run is not None:
            if rows:
                self.run.log_table(rows, f"{self.name}.json")
            self.run.log_artifact(md_path)
            self.run.log_artifact(csv_path)
            self.run.end(status)
            print(f"MLflow parent run {self.run.run_id} (experiment {self.experiment})")
            self.run = None
            os.environ.pop(mlflow_runs.PARENT_RUN_ENV, None)
