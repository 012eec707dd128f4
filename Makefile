# Chrono: every command a newcomer needs. `make setup` runs by itself on first use.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# CPU machines with the pinned CPU wheel on disk take it (seconds); elsewhere pip picks torch normally.
# Override e.g. `make setup TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cpu"`.
TORCH_SPEC ?= $(if $(wildcard /opt/wheels/torch-2.13.0*),torch==2.13.0,torch)
EXTRAS ?= test

.PHONY: setup test test-fast train eval-all paper-tables bench demo app ui clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	@touch $(STAMP)

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

train: setup
	$(PY) -m chrono.train experiment=cpu_synthetic $(ARGS)

ui: setup
	$(PY) -m mlflow ui --backend-store-uri sqlite:///$(CURDIR)/outputs/mlflow.db --default-artifact-root $(CURDIR)/outputs/mlartifacts --port $(or $(PORT),5000)

# Every configured benchmark in both query modes as one Hydra multirun, the chrono tracker beside zero_motion,
# ending with one table (printed, summary.md / summary.csv in the sweep folder, one MLflow parent run).
# The built-in synthetic benchmark is always there; add real ones by path, e.g.
#   make eval-all DAVIS=/data/tapvid_davis.pkl KINETICS=/data/kinetics CHECKPOINT=/ckpt/chrono_base.ckpt
# Without CHECKPOINT the newest best.ckpt that `make train` wrote under $(EVAL_OUTPUTS) is used, if any.
# EXPORT_QUERIES=DIR writes every job's protocol queries to DIR/<benchmark>/<query_mode>/<video>.npz;
# PREDICTIONS=DIR adds a `predictions` row scoring DIR/<benchmark>/<query_mode>/<video>.npz (docs/evaluation.md).
# EVAL_ARGS passes further overrides (e.g. EVAL_ARGS="max_videos=5 device=cuda").
CHECKPOINT ?=
DAVIS ?=
RGB_STACKING ?=
KINETICS ?=
ROBOTAP ?=
EXPORT_QUERIES ?=
PREDICTIONS ?=
EVAL_ARGS ?=
EVAL_OUTPUTS ?= outputs

eval-all: setup
	@set -e; benches=synthetic; paths=""; \
	for pair in "davis=$(DAVIS)" "rgb_stacking=$(RGB_STACKING)" "kinetics=$(KINETICS)" "robotap=$(ROBOTAP)"; do \
	  if [ -n "$${pair#*=}" ]; then benches="$$benches,$${pair%%=*}"; paths="$$paths paths.$$pair"; fi; \
	done; \
	ckpt="$(CHECKPOINT)"; \
	if [ -z "$$ckpt" ]; then \
	  found=$$(find $(EVAL_OUTPUTS) -path '*/checkpoints/best.ckpt' 2>/dev/null); \
	  if [ -n "$$found" ]; then ckpt=$$(ls -t $$found | head -n 1); fi; \
	fi; \
	if [ -n "$$ckpt" ]; then \
	  echo "eval-all: chrono tracker from $$ckpt"; trackers=chrono,zero_motion; ckpt_arg="checkpoint=$$ckpt"; \
	else \
	  echo "eval-all: chrono rows skipped: no CHECKPOINT=... given and no $(EVAL_OUTPUTS)/**/checkpoints/best.ckpt from 'make train'; evaluating zero_motion only."; \
	  trackers=zero_motion; ckpt_arg=""; \
	fi; \
	per_job='$${benchmark.name}/$${benchmark.query_mode}'; extra=""; \
	if [ -n "$(EXPORT_QUERIES)" ]; then extra="$$extra export_queries=$(abspath $(EXPORT_QUERIES))/$$per_job"; fi; \
	if [ -n "$(PREDICTIONS)" ]; then trackers="$$trackers,predictions"; extra="$$extra predictions=$(abspath $(PREDICTIONS))/$$per_job"; fi; \
	set -x; \
	$(PY) -m chrono.evaluate -m benchmark=$$benches benchmark.query_mode=first,strided tracker=$$trackers \
	  $$ckpt_arg $$paths $$extra progress=false $(EVAL_ARGS)

# Every table of the paper with the measured figures beside the published ones (docs/report.md): markdown, CSV and a
# PNG bar chart per table in outputs/report/<time>/, from the MLflow store's chrono-eval and chrono-train runs.
# REPORT_ARGS passes overrides, e.g. REPORT_ARGS="benchmark_names.davis=synthetic backbone_names.vits=tiny".
REPORT_ARGS ?=

paper-tables: setup
	$(PY) -m chrono.report $(REPORT_ARGS)

# A short synthetic video tracked with a grid of points, no download: outputs/demo/ (overlay.mp4, summary.png,
# tracks.npz/csv, and *_ground_truth files drawn from the clip's exact tracks for comparison).
demo: setup
	$(PY) -m chrono.track demo=true out=outputs/demo

# The interactive page (docs/app.md): http://127.0.0.1:7860, this machine only; ARGS passes options,
# e.g. make app ARGS="checkpoint=checkpoints/chrono_vitb.ckpt device=cuda port=8000". The test extras bring
# the app extra (Gradio) along; with other EXTRAS it is installed here.
app: setup
	@$(PY) -c "import gradio" 2>/dev/null || $(PY) -m pip install -q -e '.[app]'
	$(PY) -m chrono.app $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache

# Pre-generate the default synthetic training shards (data/synthetic/train) and the `synthetic`
# benchmark (data/synthetic/tapvid_synthetic.pkl); each only if missing (training would make them on first use).
.PHONY: data
data: setup
	$(PY) -m chrono.data.synthetic

# Speed and memory on this machine (issue #8): tables on stdout, JSON under outputs/bench/. About 11 min on a quiet
# 2-core CPU; `make bench BENCH_ARGS="mode=ci"` is the seconds-long version the tests run (docs/performance.md).
bench: setup
	$(PY) -m chrono.bench $(BENCH_ARGS)
