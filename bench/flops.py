"""FLOPs of an ONNX graph from ONNX shape inference: Conv, ConvTranspose, Gemm and MatMul MACs x 2."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import onnx
from onnx import numpy_helper, shape_inference

log = logging.getLogger(__name__)

COUNTED = ("Conv", "ConvTranspose", "Gemm", "MatMul", "MatMulInteger", "ConvInteger")


def _fix_batch(model: onnx.ModelProto, batch: int) -> None:
    """Give every graph input's dynamic first dimension the value `batch` so shapes infer to numbers."""
    for value in model.graph.input:
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_value = batch


def _shapes(model: onnx.ModelProto) -> dict[str, list[int | None]]:
    inferred = shape_inference.infer_shapes(model)
    shapes: dict[str, list[int | None]] = {}
    for value in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        dims = value.type.tensor_type.shape.dim
        shapes[value.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    for init in inferred.graph.initializer:
        shapes[init.name] = list(init.dims)
    return shapes


def _attr(node: onnx.NodeProto, name: str, default: int) -> int:
    return next((a.i for a in node.attribute if a.name == name), default)


def _node_macs(node: onnx.NodeProto, shapes: dict[str, list[int | None]]) -> int | None:
    """Multiply-accumulates of one node, or None when a shape is unknown."""
    if node.op_type in ("Conv", "ConvInteger"):
        weight, out = shapes.get(node.input[1]), shapes.get(node.output[0])
        if not weight or not out or None in weight or None in out:
            return None
        # weight [Cout, Cin/group, kh, kw]; output [N, Cout, Ho, Wo]
        return math.prod(out) * math.prod(weight[1:])
    if node.op_type == "ConvTranspose":
        weight, x = shapes.get(node.input[1]), shapes.get(node.input[0])
        if not weight or not x or None in weight or None in x:
            return None
        # weight [Cin, Cout/group, kh, kw]; every input pixel scatters Cout/group * kh * kw products
        return math.prod(x) * math.prod(weight[1:])
    if node.op_type in ("Gemm", "MatMul", "MatMulInteger"):
        a, b = shapes.get(node.input[0]), shapes.get(node.input[1])
        if not a or not b or None in a or None in b:
            return None
        if node.op_type == "Gemm":
            m = a[1] if _attr(node, "transA", 0) else a[0]
            k = a[0] if _attr(node, "transA", 0) else a[1]
            n = b[0] if _attr(node, "transB", 0) else b[1]
            return m * k * n
        batch = math.prod(a[:-2]) if len(a) > 2 else 1
        return batch * a[-2] * a[-1] * b[-1] if len(a) >= 2 else a[-1] * b[-1]
    return 0


def count_flops(path: Path | str, batch: int = 1) -> dict[str, object]:
    """FLOPs per tile (2 x MACs of the counted ops) of the fp32 ONNX model at `path`, with a per-op split."""
    model = onnx.load(str(path))
    _fix_batch(model, batch)
    shapes = _shapes(model)
    per_op: dict[str, int] = {}
    unknown: list[str] = []
    for node in model.graph.node:
        if node.op_type not in COUNTED:
            continue
        macs = _node_macs(node, shapes)
        if macs is None:
            unknown.append(node.name or node.op_type)
            continue
        per_op[node.op_type] = per_op.get(node.op_type, 0) + macs
    total = 2 * sum(per_op.values()) / batch
    if unknown:
        log.warning("%s: %d counted node(s) had unknown shapes and were left out: %s", path, len(unknown), unknown[:5])
    log.info(
        "%s: %.2f GFLOP per tile (%s)",
        path,
        total / 1e9,
        ", ".join(f"{op} {2 * m / batch / 1e9:.2f}" for op, m in per_op.items()),
    )
    return {
        "gflop_per_tile": total / 1e9,
        "gflop_by_op": {op: 2 * m / batch / 1e9 for op, m in per_op.items()},
        "nodes_unknown_shape": len(unknown),
    }


def params_of(path: Path | str) -> int:
    """Number of weights stored in the graph's initializers."""
    model = onnx.load(str(path))
    return int(sum(numpy_helper.to_array(init).size for init in model.graph.initializer))
