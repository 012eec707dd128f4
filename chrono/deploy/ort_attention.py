"""The ViT's attention exported as ONNX Runtime's fused ``com.microsoft.MultiHeadAttention``.

``torch.onnx.export`` decomposes ``scaled_dot_product_attention`` into MatMul -> Softmax -> MatMul, which
ONNX Runtime runs by materialising the [B * T, heads, L, L] scores: at the reference's 896 input (L = 4,097
tokens per frame) that is 200 MB per frame and head, 16 GB of peak memory for a 16-frame clip of the tiny
fixture model and 1.5x PyTorch's CPU time. ONNX Runtime's contrib operator ``MultiHeadAttention`` (a fused,
flash-style CPU and CUDA kernel) never holds the whole score matrix. :func:`translation_table` maps every
*unmasked* attention to it (the ViT's); masked attention (the temporal adapters' band |i - j| <= 6 over T
frames) keeps the standard decomposition, which is small there.

The operator belongs to ONNX Runtime's ``com.microsoft`` domain: a model exported with it runs in ONNX
Runtime only (``attention=onnx`` in ``python -m chrono.export`` exports standard operators only).
"""

from __future__ import annotations

from typing import Any


def translation_table() -> dict[Any, Any]:
    """``custom_translation_table`` for ``torch.onnx.export(dynamo=True)``: aten SDPA -> fused MultiHeadAttention
    when it has no mask, no causal flag and no grouped-query attention; the standard translation otherwise."""
    import onnx
    import onnxscript
    import torch
    from onnxscript import opset18 as op
    from onnxscript.function_libs.torch_lib.ops.nn import aten_scaled_dot_product_attention

    # onnx knows no schema of ONNX Runtime's contrib operators: declare the part used (q, k, v -> output).
    param = onnx.defs.OpSchema.FormalParameter
    schema = onnx.defs.OpSchema(
        "MultiHeadAttention", "com.microsoft", 1,
        inputs=[param("query", "T"), param("key", "T"), param("value", "T")], outputs=[param("output", "T")],
        type_constraints=[("T", ["tensor(float)", "tensor(float16)"], "")],
        attributes=[onnx.defs.OpSchema.Attribute("num_heads", onnx.defs.OpSchema.AttrType.INT, ""),
                    onnx.defs.OpSchema.Attribute("scale", onnx.defs.OpSchema.AttrType.FLOAT, "")],
    )
    multi_head_attention = onnxscript.values.Op(onnxscript.values.Opset("com.microsoft", 1), "MultiHeadAttention",
                                                op_schema=schema)

    def sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
        """q, k, v [B, heads, L, D] -> [B, heads, L, D]; the fused op takes and gives [B, L, heads * D]."""
        if attn_mask is not None or is_causal or enable_gqa:
            return aten_scaled_dot_product_attention(query, key, value, attn_mask, dropout_p, is_causal, scale,
                                                     enable_gqa)
        heads, dim = query.shape[1], query.shape[3]  # static in the ViT

        def to_bsd(x):
            return op.Reshape(op.Transpose(x, perm=[0, 2, 1, 3]), op.Constant(value_ints=[0, 0, -1]))

        out = multi_head_attention(to_bsd(query), to_bsd(key), to_bsd(value), num_heads=heads,
                                   scale=float(dim) ** -0.5 if scale is None else float(scale))
        return op.Transpose(op.Reshape(out, op.Constant(value_ints=[0, 0, heads, dim])), perm=[0, 2, 1, 3])

    return {torch.ops.aten.scaled_dot_product_attention.default: sdpa}
