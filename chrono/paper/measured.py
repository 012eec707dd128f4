"""Measured figures for the paper's tables, found in MLflow runs and results files.

Each measurement is one benchmark in one query mode of one *model* (a row of :data:`chrono.paper.published.MODELS`),
with the metrics as fractions. Where they come from:

- ``chrono.evaluate`` runs (MLflow tags ``tracker``, ``benchmark``, ``query_mode``; metrics
  ``<benchmark>/<query_mode>/<metric>``; params ``checkpoint``, ``label``) and their results files
  (``{"<benchmark>/<query_mode>": means}``, with the run's ``.hydra/config.yaml`` beside them when there is one);
- ``chrono.train`` runs and their ``results.json``: the final evaluation's ``final/<benchmark>/<mode>/<name>/<AJ |
  delta_avg | OA>`` (percent; the trained model's row is the run's own ``name``, and ``zero_motion``).

Which model a run measures: its ``label`` when it has one (``python -m chrono.evaluate ... label=chrono_vits``);
otherwise its facts matched against each model's: ``tracker``, plus ``backbone.name``, ``adapter.enabled``,
``adapter.type``, ``adapter.placement`` of the training run behind the checkpoint (its ``.hydra/config.yaml``
next to ``checkpoints/``, else the MLflow training run whose ``run_dir`` holds the checkpoint). Every lookup is
defensive: a setting an older run did not log takes the reference's value (``FACT_DEFAULTS``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from chrono.errors import ChronoError
from chrono.metrics import METRIC_NAMES, RESULT_KEYS
from chrono.paper.published import FACT_DEFAULTS, MODELS

TRAINING_FACTS = ("backbone.name", "adapter.enabled", "adapter.type", "adapter.placement", "name")
FROM_RESULT_KEY = {key: name for name, key in RESULT_KEYS.items()}  # AJ -> average_jaccard, ...


class ReportError(ChronoError):
    """A results file or setting the report cannot use; the message names it."""


@dataclass
class Measurement:
    """Means of one model on one benchmark in one query mode (``metrics`` in [0, 1]; maybe only some)."""

    model: str
    benchmark: str
    query_mode: str
    metrics: dict[str, float]
    source: str  # "MLflow run <id> (<experiment>)" or a file path
    time: float  # when it was measured (seconds since the epoch): the newest wins
    gallery: str | None = None  # the run's worst/best videos (visualize=K): a path or an artifact URI

    @property
    def key(self) -> str:
        return f"{self.benchmark}/{self.query_mode}"


@dataclass
class Matcher:
    """Decides the model of a run from its facts; ``backbone_names`` maps the paper's backbones to the names
    runs use (e.g. ``{"vits": "tiny"}`` for CPU miniatures)."""

    backbone_names: Mapping[str, str] = field(default_factory=dict)

    def model(self, facts: Mapping[str, Any]) -> str | None:
        if facts.get("adapter.type") == "none":  # adapters switched off by type rather than by adapter.enabled
            facts = {**facts, "adapter.enabled": False}
        label = facts.get("label")
        if label not in (None, "", "None", "null"):
            return str(label) if str(label) in MODELS else None
        for key, (_, wanted) in MODELS.items():
            if all(self._same(name, facts, value) for name, value in wanted.items()):
                return key
        return None

    def _same(self, name: str, facts: Mapping[str, Any], value: Any) -> bool:
        if name == "backbone.name":
            value = self.backbone_names.get(value, value)
        got = facts.get(name)
        if got in (None, "None", "null"):
            got = FACT_DEFAULTS.get(name) if facts.get("backbone.name") not in (None, "None") else None
        return got is not None and str(got).lower() == str(value).lower()


# ------------------------------------------------------------------------------------------- facts from configs


def _select(cfg: Any, dotted: str) -> Any:
    from omegaconf import OmegaConf

    try:
        return OmegaConf.select(cfg, dotted, default=None, throw_on_resolution_failure=False)
    except Exception:  # noqa: BLE001 - an older config with a node of another shape: the fact is unknown
        return None


def config_facts(config_file: Path, names: Iterable[str]) -> dict[str, Any]:
    """The dotted ``names`` found in a run's composed config (``.hydra/config.yaml``); {} if unreadable."""
    from omegaconf import OmegaConf

    try:
        cfg = OmegaConf.load(config_file)
    except Exception:  # noqa: BLE001 - a missing or broken config gives no facts, not an error
        return {}
    return {name: value for name in names if (value := _select(cfg, name)) is not None}


def training_facts_on_disk(checkpoint: str | None) -> dict[str, Any]:
    """Backbone and adapter settings of the ``chrono.train`` run that wrote ``checkpoint``
    (``<run>/checkpoints/*.ckpt`` beside ``<run>/.hydra/config.yaml``); {} when there is none."""
    if not checkpoint or checkpoint in ("None", "null"):
        return {}
    path = Path(checkpoint)
    for folder in (path.parent, path.parent.parent):
        config = folder / ".hydra" / "config.yaml"
        if config.is_file():
            return config_facts(config, TRAINING_FACTS)
    return {}


# ------------------------------------------------------------------------------------------------- results files


def _final_metrics(results: Mapping[str, Any], name: str) -> dict[tuple[str, str, str], dict[str, float]]:
    """``final/<bench>/<mode>/<tracker>/<key>`` entries (percent) -> {(tracker, bench, mode): {metric: fraction}};
    the trained model appears under ``name`` (its run name)."""
    found: dict[tuple[str, str, str], dict[str, float]] = {}
    for key, value in results.items():
        parts = str(key).split("/")
        if len(parts) < 5 or parts[0] != "final" or parts[-1] not in FROM_RESULT_KEY:
            continue
        tracker = "/".join(parts[3:-1])
        if tracker not in (name, "zero_motion") or not isinstance(value, (int, float)):
            continue
        found.setdefault((tracker, parts[1], parts[2]), {})[FROM_RESULT_KEY[parts[-1]]] = float(value) / 100
    return found


def _training_measurements(results: Mapping[str, Any], facts: Mapping[str, Any], matcher: Matcher, source: str,
                           when: float, gallery: str | None = None) -> list[Measurement]:
    name = str(facts.get("name", ""))
    out = []
    for (tracker, bench, mode), metrics in _final_metrics(results, name).items():
        is_floor = tracker == "zero_motion"
        model = matcher.model({"tracker": "zero_motion"} if is_floor else {**facts, "tracker": "chrono"})
        if model is not None:
            out.append(Measurement(model, bench, mode, metrics, source, when, gallery))
    return out


def _gallery_on_disk(folder: Path) -> str | None:
    from chrono.eval.gallery import GALLERY_DIR, INDEX

    index = folder / GALLERY_DIR / INDEX
    return str(index) if index.is_file() else None


def read_results_file(path: Path, matcher: Matcher, label: str | None = None) -> list[Measurement]:
    """Measurements of one results JSON (of ``chrono.evaluate`` or ``chrono.train``); ``label`` names its model
    (else the run's config beside it decides)."""
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ReportError(f"{path}: not a readable results JSON file ({err})") from err
    if not isinstance(results, Mapping):
        raise ReportError(f"{path}: a results file maps names to figures; this one holds a {type(results).__name__}")
    config = path.parent / ".hydra" / "config.yaml"
    facts = config_facts(config, ("tracker.name", "checkpoint", "label", *TRAINING_FACTS))
    facts["tracker"] = facts.pop("tracker.name", None)
    if label:
        facts["label"] = label
    when, gallery = path.stat().st_mtime, _gallery_on_disk(path.parent)
    keyed = {k: v for k, v in results.items() if isinstance(v, Mapping)}
    if keyed:  # chrono.evaluate: "<benchmark>/<query_mode>" -> means
        facts = {**training_facts_on_disk(facts.get("checkpoint")), **facts}
        model = matcher.model(facts)
        if model is None:
            return []
        out = []
        for key, means in keyed.items():
            bench, _, mode = str(key).partition("/")
            metrics = {n: float(means[n]) for n in METRIC_NAMES if isinstance(means.get(n), (int, float))}
            out.append(Measurement(model, bench, mode, metrics, str(path), when, gallery))
        return out
    return _training_measurements(results, facts, matcher, str(path), when, gallery)


def results_files(entries: Iterable[str], absolute: Callable[[str], str] = str) -> list[tuple[Path, str | None]]:
    """(file, label or None) of every ``PATH`` or ``ROW=PATH`` entry (ROW a key of MODELS; ``absolute`` makes
    the path absolute); a folder stands for every results.json below it."""
    found = []
    for entry in entries:
        label, sep, rest = str(entry).partition("=")
        label, path = (label, Path(absolute(rest))) if sep and label in MODELS else (None, Path(absolute(str(entry))))
        if path.is_dir():
            found += [(p, label) for p in sorted(path.rglob("results.json"))]
        elif path.is_file():
            found.append((path, label))
        else:
            raise ReportError(f"{path}: no such results file or folder (results=...)")
    return found


# ------------------------------------------------------------------------------------------------------ MLflow


def _all_runs(client, experiment_ids: list[str]) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs(experiment_ids, "attributes.status = 'FINISHED'", max_results=1000, page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            return runs


def _artifact_gallery(client, run) -> str | None:
    from chrono.eval.gallery import GALLERY_DIR, INDEX

    run_dir = run.data.tags.get("run_dir")
    if run_dir and _gallery_on_disk(Path(run_dir)):
        return _gallery_on_disk(Path(run_dir))
    try:
        names = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, GALLERY_DIR)}
    except Exception:  # noqa: BLE001 - an artifact store out of reach: no link
        return None
    return f"{run.info.artifact_uri}/{GALLERY_DIR}/{INDEX}" if INDEX in names else None


def read_mlflow(experiments: Iterable[str], matcher: Matcher, tracking_uri: str) -> tuple[list[Measurement], list[str]]:
    """Measurements of every finished run of ``experiments`` in the store at ``tracking_uri``; and notes
    (experiments not found)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    notes, ids = [], {}
    for name in experiments:
        found = client.get_experiment_by_name(str(name))
        if found is None:
            notes.append(f"MLflow experiment {name!r} not found in {tracking_uri}")
        else:
            ids[found.experiment_id] = str(name)
    runs = _all_runs(client, list(ids)) if ids else []
    # training runs by their folder: an evaluation's checkpoint inside it inherits their settings
    trained = {}
    for run in runs:
        params = run.data.params
        if "backbone.name" in params and run.data.tags.get("run_dir"):
            trained[os.path.normpath(run.data.tags["run_dir"])] = {k: params[k] for k in TRAINING_FACTS if k in params}
    out = []
    for run in runs:
        tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
        source = f"MLflow run {run.info.run_id} ({ids.get(run.info.experiment_id, run.info.experiment_id)})"
        when = (run.info.start_time or 0) / 1000
        if "benchmark" in tags and "query_mode" in tags:  # chrono.evaluate
            facts = {"tracker": tags.get("tracker"), "label": tags.get("label") or params.get("label")}
            checkpoint = params.get("checkpoint")
            facts.update(training_facts_on_disk(checkpoint) or _trained_by(trained, checkpoint))
            model = matcher.model(facts)
            if model is None:
                continue
            prefix = f"{tags['benchmark']}/{tags['query_mode']}/"
            values = {n: metrics[prefix + n] for n in METRIC_NAMES if prefix + n in metrics}
            if values:
                out.append(Measurement(model, tags["benchmark"], tags["query_mode"], values, source, when,
                                       _artifact_gallery(client, run)))
        elif "backbone.name" in params:  # chrono.train
            facts = {k: params[k] for k in TRAINING_FACTS if k in params}
            out += _training_measurements(metrics, facts, matcher, source, when)
    return out, notes


def _trained_by(trained: Mapping[str, dict], checkpoint: str | None) -> dict:
    if not checkpoint or checkpoint in ("None", "null"):
        return {}
    folder = os.path.normpath(checkpoint)
    while True:
        parent = os.path.dirname(folder)
        if folder in trained:
            return trained[folder]
        if parent == folder:
            return {}
        folder = parent


def newest(measurements: Iterable[Measurement]) -> dict[tuple[str, str], tuple[Measurement, int]]:
    """(model, "<benchmark>/<mode>") -> (the newest measurement, how many there were)."""
    best: dict[tuple[str, str], tuple[Measurement, int]] = {}
    for m in measurements:
        key = (m.model, m.key)
        have, count = best.get(key, (None, 0))
        best[key] = (m if have is None or m.time >= have.time else have, count + 1)
    return best

