"""Deploying the tracker: ONNX export, an ONNX Runtime tracker, int8 quantization (docs/deploy.md).

- :mod:`chrono.deploy.bundle`: the files of an exported model (the whole forward and its streaming parts) and
  the facts stored in them (resolution, grid, precision, ...);
- :mod:`chrono.deploy.export`: the graphs and their export with ``torch.onnx.export(dynamo=True)``, checked
  through ONNX Runtime against PyTorch before anything is written (``python -m chrono.export``);
- :mod:`chrono.deploy.ort_attention`: the ViT's attention as ONNX Runtime's fused ``MultiHeadAttention``;
- :mod:`chrono.deploy.runtime`: :class:`~chrono.deploy.runtime.OnnxTracker`, the same ``predict`` /
  ``extract_features`` / ``track_features`` API as the PyTorch tracker on ONNX Runtime sessions, and the choice
  between the two runtimes of ``chrono.track`` and ``chrono.evaluate`` (``runtime=onnx``);
- :mod:`chrono.deploy.quantize`: dynamic int8 quantization of the ViT's and adapters' linear layers;
- :mod:`chrono.deploy.compare`: how far two trackers' answers lie apart (the checks and the int8 price).

Exporting needs ``torch``, ``onnx`` and ``onnxscript``; running needs ``onnxruntime`` only (``pip install -e
'.[export]'``). Nothing here imports them at module level.
"""
