"""Evaluation on TAP-Vid benchmarks: readers, the query protocol, baselines and the benchmark loop."""
