"""Synthetic point-tracking data with exact ground truth: the clip generator and the data sets made from it.

- :mod:`~chrono.data.synthetic.clips`: :func:`generate_clip` (numpy only) and its options and seeds;
- :mod:`~chrono.data.synthetic.textures`: the procedural textures it paints with;
- :mod:`~chrono.data.synthetic.store`: training shards and the ``synthetic`` TAP-Vid benchmark on disk;
- ``python -m chrono.data.synthetic``: the command (:mod:`chrono.data.synthetic.__main__`).
"""

from chrono.data.synthetic.clips import (BENCHMARK_DEFAULTS, GENERATOR_VERSION, ClipOptions, benchmark_seed,
                                         clip_options, generate_clip, train_seed)

__all__ = ["BENCHMARK_DEFAULTS", "GENERATOR_VERSION", "ClipOptions", "benchmark_seed", "clip_options",
           "generate_clip", "train_seed"]
