"""Keras -> ONNX with tf2onnx: uint8 NHWC `image` in, contract-named outputs, opset 17, a checked clean graph."""

from __future__ import annotations

import gc
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import onnx

from contract.errors import AgrilandError

log = logging.getLogger(__name__)

OPSET = 17
INPUT_NAME = "image"
ModelName = Literal["dec", "unet", "fields"]
# Who optimises the converted graph. tf2onnx's optimisers deep-copy the whole graph once per pass and
# optimiser, which exhausts memory on graphs holding huge weights (the `full` DEC's 131072 x 1024 Dense);
# "onnxruntime" converts with them off and runs ONNX Runtime's offline basic-level optimisation instead
# (constant folding, Transpose cancelling, Conv+BatchNorm fusion: standard ONNX ops only, portable).
GraphOptimizer = Literal["auto", "tf2onnx", "onnxruntime"]
# "auto" switches to "onnxruntime" when one weight has more elements than this (ResNet-50 / InceptionV3
# convolutions have at most ~2.4 M; the DEC's flatten -> Dense has 33.5 M at 256 px with 256 hidden units).
LARGE_WEIGHT_ELEMENTS = 16_000_000
# Graph output names per model, in the order of the Keras model's outputs.
OUTPUT_NAMES: dict[str, tuple[str, ...]] = {"unet": ("mask",), "dec": ("embedding", "q"), "fields": ("fields",)}
# Element-wise / layout ops that may sit between the input and the first real compute node.
_PREPROCESSING_OPS = frozenset({"Cast", "Mul", "Add", "Sub", "Div", "Gather", "Concat", "Transpose", "Identity"})


@dataclass(frozen=True)
class GraphReport:
    """What the exported graph looks like around its input (for logs, tests and the report)."""

    n_nodes: int
    n_transposes: int
    input_prefix: tuple[str, ...]  # op types from the input to the first compute node
    input_transposes: int  # Transposes in that prefix (1 is required: NHWC contract, NCHW convs)
    transpose_right_after_input: bool  # a Transpose consuming `image` directly
    optimizer: str = "tf2onnx"  # who optimised the graph (see GraphOptimizer)


def keras_output_order(model: object, name: ModelName) -> list[int]:
    """Index of each contract output among the Keras model's outputs (matched by output layer name)."""
    wanted = OUTPUT_NAMES[name]
    keras_names = list(getattr(model, "output_names", []) or [])
    if len(keras_names) != len(wanted):
        raise AgrilandError(
            f"the {name} model has {len(keras_names)} output(s) {keras_names}, the contract wants {list(wanted)}"
        )
    if set(keras_names) == set(wanted):
        return [keras_names.index(w) for w in wanted]
    log.warning("Keras output names %s differ from the contract %s; using their order", keras_names, list(wanted))
    return list(range(len(wanted)))


def _rename_value(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Rename a value everywhere it is produced or consumed (graph outputs included)."""
    if old == new:
        return
    for node in graph.node:
        node.input[:] = [new if v == old else v for v in node.input]
        node.output[:] = [new if v == old else v for v in node.output]
    for value in [*graph.output, *graph.value_info]:
        if value.name == old:
            value.name = new


def modernise_resize(model: onnx.ModelProto) -> int:
    """Replace Resize's deprecated `tf_half_pixel_for_nn` by the equivalent `asymmetric` mode where exact.

    For nearest-neighbour upsampling by integer factors s, floor((x + 0.5) / s) == floor(x / s), so the two
    modes pick the same pixels; ONNX Runtime warns about the deprecated one. Returns the nodes changed.
    """
    from onnx import numpy_helper

    inits = {init.name: init for init in model.graph.initializer}
    changed = 0
    for node in model.graph.node:
        if node.op_type != "Resize":
            continue
        attrs = {a.name: a for a in node.attribute}
        mode = attrs.get("coordinate_transformation_mode")
        if mode is None or mode.s != b"tf_half_pixel_for_nn" or attrs["mode"].s != b"nearest":
            continue
        scales = numpy_helper.to_array(inits[node.input[2]]) if len(node.input) > 2 and node.input[2] in inits else None
        if scales is None or scales.size == 0 or not all(float(v).is_integer() and v >= 1 for v in scales):
            log.warning("Resize %s keeps tf_half_pixel_for_nn (scales not constant integers)", node.name)
            continue
        mode.s = b"asymmetric"
        attrs["nearest_mode"].s = b"floor"
        changed += 1
    return changed


def _check_input(model: onnx.ModelProto, tile_size: int) -> None:
    inputs = [i for i in model.graph.input if i.name not in {init.name for init in model.graph.initializer}]
    if len(inputs) != 1 or inputs[0].name != INPUT_NAME:
        raise AgrilandError(f"exported graph inputs are {[i.name for i in inputs]}, expected ['{INPUT_NAME}']")
    tensor = inputs[0].type.tensor_type
    if tensor.elem_type != onnx.TensorProto.UINT8:
        raise AgrilandError(f"exported input is {onnx.TensorProto.DataType.Name(tensor.elem_type)}, expected UINT8")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    if dims[1:] != [tile_size, tile_size, 3] or dims[0] is not None:
        raise AgrilandError(f"exported input shape is {dims}, expected [None, {tile_size}, {tile_size}, 3]")


def inspect_graph(model: onnx.ModelProto, optimizer: str = "tf2onnx") -> GraphReport:
    """Walk from the input through preprocessing ops and count the Transposes met on the way."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for value in node.input:
            consumers.setdefault(value, []).append(node)
    prefix: list[str] = []
    frontier = [INPUT_NAME]
    seen: set[int] = set()
    while frontier:
        value = frontier.pop()
        for node in consumers.get(value, []):
            if id(node) in seen or node.op_type not in _PREPROCESSING_OPS:
                continue
            seen.add(id(node))
            prefix.append(node.op_type)
            frontier.extend(node.output)
    right_after = any(n.op_type == "Transpose" for n in consumers.get(INPUT_NAME, []))
    return GraphReport(
        n_nodes=len(model.graph.node),
        n_transposes=sum(n.op_type == "Transpose" for n in model.graph.node),
        input_prefix=tuple(prefix),
        input_transposes=prefix.count("Transpose"),
        transpose_right_after_input=right_after,
        optimizer=optimizer,
    )


def largest_weight(model: object) -> int:
    """Elements in the model's largest weight tensor (0 for a model without weights)."""
    sizes = [int(np.prod(w.shape)) for w in getattr(model, "weights", [])]
    return max(sizes, default=0)


def choose_optimizer(model: object, requested: GraphOptimizer = "auto") -> Literal["tf2onnx", "onnxruntime"]:
    """Resolve "auto": ONNX Runtime's offline optimisation for graphs with a huge weight, else tf2onnx's."""
    if requested != "auto":
        return requested
    return "onnxruntime" if largest_weight(model) > LARGE_WEIGHT_ELEMENTS else "tf2onnx"


def optimize_offline(raw: Path, optimized: Path) -> None:
    """ONNX Runtime's basic-level graph optimisation of `raw`, run once offline, saved as plain ONNX to `optimized`."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    # basic = semantics-preserving rewrites into standard ONNX ops (no provider-specific kernels), so the
    # saved file stays portable between CPU and CUDA sessions; the serving session applies ORT_ENABLE_ALL.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(optimized)
    options.log_severity_level = 3
    try:
        ort.InferenceSession(str(raw), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types
        raise AgrilandError(f"ONNX Runtime could not optimise the converted graph: {err}") from err


def convert_keras(
    model: object, name: ModelName, tile_size: int, output_path: Path, optimizer: GraphOptimizer = "auto"
) -> GraphReport:
    """Convert a loaded tf_keras model to `output_path` and enforce the artifact contract on the graph."""
    import tensorflow as tf
    import tf2onnx

    order = keras_output_order(model, name)
    signature = (tf.TensorSpec([None, tile_size, tile_size, 3], tf.uint8, name=INPUT_NAME),)
    chosen = choose_optimizer(model, optimizer)
    started = time.monotonic()
    # optimizers=None: all of tf2onnx's; an empty mapping: none (public argument of from_keras)
    tf2onnx_optimizers = None if chosen == "tf2onnx" else {}
    log.info(
        "%s: converting with tf2onnx (graph optimiser: %s; largest weight %d elements)",
        name,
        chosen,
        largest_weight(model),
    )
    try:
        proto, _ = tf2onnx.convert.from_keras(
            model, input_signature=signature, opset=OPSET, optimizers=tf2onnx_optimizers
        )
    except Exception as err:  # tf2onnx raises bare exceptions for unsupported ops
        raise AgrilandError(f"tf2onnx could not convert the {name} model: {err}") from err
    graph = proto.graph
    produced = [o.name for o in graph.output]
    if len(produced) != len(order):
        raise AgrilandError(f"tf2onnx produced outputs {produced}, expected {len(order)} for {name}")
    # tf2onnx names outputs after the Keras output layers already; rename only where it did not.
    temp = {produced[k]: f"__agriland_out_{i}" for i, k in enumerate(order)}
    for old, tmp in temp.items():
        _rename_value(graph, old, tmp)
    for i, wanted in enumerate(OUTPUT_NAMES[name]):
        _rename_value(graph, f"__agriland_out_{i}", wanted)
    by_name = {o.name: o for o in graph.output}
    ordered = [by_name[w] for w in OUTPUT_NAMES[name]]
    del graph.output[:]
    graph.output.extend(ordered)
    if chosen == "onnxruntime":
        n_before = len(proto.graph.node)
        output_path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".ort-opt-", dir=output_path.parent) as tmp:
            raw, optimized = Path(tmp) / "raw.onnx", Path(tmp) / "optimized.onnx"
            onnx.save(proto, str(raw))
            del proto, graph, by_name, ordered  # one copy of the weights in memory while ONNX Runtime works
            gc.collect()
            optimize_offline(raw, optimized)
            proto = onnx.load(str(optimized))
        # ONNX Runtime declares every domain it knows; keep the ones the graph's nodes use
        used = {node.domain or "" for node in proto.graph.node} | {""}
        kept = [o for o in proto.opset_import if (o.domain or "") in used]
        del proto.opset_import[:]
        proto.opset_import.extend(kept)
        log.info("%s: ONNX Runtime offline optimisation: %d -> %d nodes", name, n_before, len(proto.graph.node))
    if n_resize := modernise_resize(proto):
        log.info("%s: %d Resize node(s) moved from deprecated tf_half_pixel_for_nn to asymmetric", name, n_resize)
    _check_input(proto, tile_size)
    onnx.checker.check_model(proto)
    report = inspect_graph(proto, chosen)
    if report.input_transposes > 1:
        raise AgrilandError(
            f"exported {name} graph has {report.input_transposes} Transposes at its input "
            f"({' -> '.join(report.input_prefix)}); expected at most one (NHWC -> NCHW)"
        )
    log.info(
        "%s graph: %d nodes, %d Transpose(s); input path %s; converted in %.1f s",
        name,
        report.n_nodes,
        report.n_transposes,
        " -> ".join(report.input_prefix) or "(direct)",
        time.monotonic() - started,
    )
    output_path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(output_path))
    return report
