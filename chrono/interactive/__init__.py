"""The interactive page of ``python -m chrono.app``: open a video, click points, track, correct, download.

Layers (only :mod:`.page` imports Gradio; everything else is plain Python, tested without a browser):

- :mod:`.settings`: the page's settings, from ``conf/app.yaml`` (no defaults in code);
- :mod:`.points`: the point list of one video (add, grid, remove, the queries array and its colours);
- :mod:`.session`: one opened video and its points: opening (upload, server path, demo clip) within the
  limits, the frame shown with its markers, click -> video pixel;
- :mod:`.checkpoints`: the checkpoints offered (``checkpoints/``, ``outputs/**/checkpoints/``) and loading them;
- :mod:`.tracking`: one Track press through ``chrono.track``'s own job (:func:`chrono.inference.job.track`)
  with a :class:`chrono.inference.windowed.FeatureStore`, so re-tracking reuses every window's features;
- :mod:`.plots`: x, y and visibility over time per point (tables for Gradio's LinePlot), the highlighted summary;
- :mod:`.page`: the Gradio page and the server.

Coordinates everywhere: query points (t, y, x) and tracks (x, y) in pixels of the decoded frames (raster
convention: pixel i covers [i, i + 1)), t the index among the opened frames; the files written are in the
video file's own pixels and frame numbers, exactly as ``chrono.track`` writes them.
"""
