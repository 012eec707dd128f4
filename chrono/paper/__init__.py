"""The paper's tables: its published figures (:mod:`~chrono.paper.published`), the measured ones found in MLflow
runs and results files (:mod:`~chrono.paper.measured`), both side by side (:mod:`~chrono.paper.tables`) and as
bar charts (:mod:`~chrono.paper.chart`). The command is ``python -m chrono.report``."""
