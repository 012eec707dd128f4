"""``python -m chrono.perf.worker '<case JSON>'``: one benchmark case in a fresh process (run by chrono.perf.suite).

Prints ``BENCH_RESULT <result JSON>`` on stdout for the parent to read.
"""

from __future__ import annotations

import json
import sys

from chrono.perf.cases import run_case
from chrono.perf.suite import RESULT_PREFIX

if __name__ == "__main__":
    print(RESULT_PREFIX + json.dumps(run_case(json.loads(sys.argv[1]))), flush=True)
