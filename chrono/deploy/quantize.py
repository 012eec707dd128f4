"""Dynamic int8 quantization of an exported bundle (``precision=int8``: faster CPU tracking at a measured price).

ONNX Runtime's ``quantize_dynamic`` turns every ``MatMul`` with a constant weight into ``MatMulInteger``: weights
stored as int8 (symmetric, per tensor), activations quantized to uint8 on the fly, row by row of each call.
That covers the ViT's linear layers (qkv, proj, the MLP) and the temporal adapters' (their attention's qkv and
proj); convolutions (patch embedding, the adapters' convs), the attention products of two activations and the
cost volume stay float32.

Two MatMuls of the head have constant weights too and stay float32: ``occ_linear`` (Linear(3, 2) on [mean, max,
min] of the cost volume) and the soft-argmax window basis [K, 3]. Quantizing them moves the occlusion logits by
up to 1.5 and flips 2.9 % of the occlusion decisions of the fixture model (a prototype measurement, docs/deploy.md); a weight with a side
below :data:`SMALL_WEIGHT` marks them. What int8 costs in accuracy and gains in speed: docs/deploy.md.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from dataclasses import replace
from pathlib import Path

from chrono.deploy.bundle import GRAPHS, INSTALL_HINT, METADATA_KEY, ModelInfo, OnnxModelError, bundle_paths

SMALL_WEIGHT = 16  # MatMuls whose constant weight has a side below this stay float32 (the head's two)


def small_weight_matmuls(model) -> list[str]:
    """Names of the MatMul nodes of an ``onnx.ModelProto`` whose constant weight has a side < SMALL_WEIGHT."""
    shapes = {t.name: tuple(t.dims) for t in model.graph.initializer}
    return [n.name for n in model.graph.node
            if n.op_type == "MatMul" and n.input[1] in shapes and min(shapes[n.input[1]], default=0) < SMALL_WEIGHT]


@contextlib.contextmanager
def _quiet_quantizer():
    log = logging.getLogger()  # the quantizer logs its "consider pre-processing" advice on the root logger
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def quantize_graph(src: str | Path, dst: str | Path) -> dict[str, int]:
    """int8 weights for ``src``'s linear layers, written to ``dst`` with its metadata's precision set to int8;
    counts of ``quantized`` MatMuls and MatMuls ``kept`` in float32 (a graph with none to quantize is copied)."""
    import onnx

    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        raise OnnxModelError(f"int8 quantization needs onnxruntime: {INSTALL_HINT}") from None
    model = onnx.load(str(src))
    for i, node in enumerate(model.graph.node):  # nodes_to_exclude names nodes: every node needs one
        node.name = node.name or f"chrono_node_{i}"
    keep = small_weight_matmuls(model)
    weights = {t.name for t in model.graph.initializer}
    candidates = [n for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in weights and n.name not in keep]
    if candidates:
        with _quiet_quantizer():
            quantize_dynamic(model, str(dst), op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8,
                             per_channel=False, nodes_to_exclude=keep)
        model = onnx.load(str(dst))
    else:
        shutil.copyfile(src, dst)
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            info = ModelInfo.from_json(prop.value, str(src))
            prop.value = replace(info, precision="int8").to_json()
    onnx.save(model, str(dst))
    return {"quantized": len(candidates), "kept": len(keep)}


def quantize_bundle(src: str | Path, dst: str | Path) -> dict[str, dict[str, int]]:
    """Quantize every graph of the bundle whose whole-forward file is ``src`` into the bundle ``dst``
    (:func:`chrono.deploy.bundle.bundle_paths` names both); the counts of :func:`quantize_graph` by graph."""
    sources, targets = bundle_paths(src), bundle_paths(dst)
    return {g: quantize_graph(sources[g], targets[g]) for g in GRAPHS}
