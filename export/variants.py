"""fp16 (onnxconverter-common) and int8 static QDQ (onnxruntime.quantization) variants of an fp32 export."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import onnx

from contract.errors import AgrilandError
from export.onnx_export import INPUT_NAME, inspect_graph
from export.parity import ParityError

log = logging.getLogger(__name__)

# ops that must stay float in both variants: DEC's Student-t head (squared distances overflow fp16 and lose
# argmax resolution in int8) hangs off the `embedding` value.
HEAD_ROOT = "embedding"
_PREPROCESSING_OPS = frozenset({"Cast", "Mul", "Add", "Sub", "Div", "Gather", "Identity"})


def _name_nodes(model: onnx.ModelProto) -> None:
    """Give every node a unique name (quantizer exclusion lists are by node name)."""
    seen: set[str] = set()
    for i, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{i}"
        seen.add(node.name)


def downstream_nodes(model: onnx.ModelProto, root: str) -> list[str]:
    """Names of every node that (transitively) consumes the value `root`."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for value in node.input:
            consumers.setdefault(value, []).append(node)
    names: list[str] = []
    frontier, seen = [root], set()
    while frontier:
        for node in consumers.get(frontier.pop(), []):
            if node.name not in seen:
                seen.add(node.name)
                names.append(node.name)
                frontier.extend(node.output)
    return names


def preprocessing_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the element-wise nodes between the uint8 input and the first Transpose/compute node."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for value in node.input:
            consumers.setdefault(value, []).append(node)
    names: list[str] = []
    frontier = [INPUT_NAME]
    while frontier:
        for node in consumers.get(frontier.pop(), []):
            if node.op_type in _PREPROCESSING_OPS and node.name not in names:
                names.append(node.name)
                frontier.extend(node.output)
    return names


def _float_values(model: onnx.ModelProto) -> set[str]:
    """Names of values typed float32 (after shape inference)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    values = [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]
    floats = {v.name for v in values if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT}
    return floats | {i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT}


def tidy_fp16_casts(model: onnx.ModelProto) -> int:
    """Undo the converter's fp32 -> fp16 -> fp32 round trips between blocked nodes, and give graph outputs
    produced by a blocked node their float32 type back. Returns the number of Casts bypassed."""
    producers = {out: node for node in model.graph.node for out in node.output}
    floats = _float_values(model)

    def cast_to(node: onnx.NodeProto) -> int | None:
        return next((a.i for a in node.attribute if a.name == "to"), None) if node.op_type == "Cast" else None

    bypassed = 0
    for node in model.graph.node:
        for i, value in enumerate(node.input):
            back = producers.get(value)  # Cast(to=float32) <- Cast(to=float16) <- float32 value
            if back is None or cast_to(back) != onnx.TensorProto.FLOAT:
                continue
            down = producers.get(back.input[0])
            if down is not None and cast_to(down) == onnx.TensorProto.FLOAT16 and down.input[0] in floats:
                node.input[i] = down.input[0]
                bypassed += 1
    outputs = {o.name: o for o in model.graph.output}
    for name, output in outputs.items():
        cast = producers.get(name)
        if cast is not None and cast_to(cast) == onnx.TensorProto.FLOAT16 and cast.input[0] in floats:
            next(a for a in cast.attribute if a.name == "to").i = onnx.TensorProto.FLOAT
            output.type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    while True:  # drop Casts left without consumers (one layer per pass)
        used = {v for node in model.graph.node for v in node.input} | set(outputs)
        keep = [n for n in model.graph.node if any(o in used for o in n.output)]
        if len(keep) == len(model.graph.node):
            return bypassed
        del model.graph.node[:]
        model.graph.node.extend(keep)


def to_fp16(fp32_path: Path, out_path: Path) -> Path:
    """Convert weights and activations to float16, keeping the uint8 input and float32 outputs."""
    from onnxconverter_common import float16

    model = onnx.load(str(fp32_path))
    _name_nodes(model)
    # the uint8 -> float Cast and the scaling after it stay fp32 (the converter would retype the Cast's
    # output to float16 without changing its `to`, which ONNX Runtime rejects); a Cast to fp16 follows them.
    blocked = preprocessing_nodes(model) + downstream_nodes(model, HEAD_ROOT)
    try:
        converted = float16.convert_float_to_float16(model, keep_io_types=True, node_block_list=blocked)
        tidy_fp16_casts(converted)
        onnx.checker.check_model(converted)
    except Exception as err:  # the converter raises assorted errors on graphs it cannot handle
        raise AgrilandError(f"fp16 conversion of {fp32_path} failed: {err}") from err
    log.info(
        "fp16: converted %d nodes (%d kept in fp32: preprocessing, DEC head)", len(converted.graph.node), len(blocked)
    )
    onnx.save(converted, str(out_path))
    return out_path


class TileReader:
    """CalibrationDataReader feeding uint8 NHWC tile batches to the `image` input."""

    def __init__(self, images: np.ndarray, batch_size: int = 8) -> None:
        if images.dtype != np.uint8 or images.ndim != 4:
            raise AgrilandError(f"calibration tiles must be uint8 [N, H, W, 3], got {images.dtype} {images.shape}")
        self.images = images
        self.batch_size = batch_size
        self._batches: Iterator[dict[str, np.ndarray]] = self._make()

    def _make(self) -> Iterator[dict[str, np.ndarray]]:
        for start in range(0, len(self.images), self.batch_size):
            yield {INPUT_NAME: np.ascontiguousarray(self.images[start : start + self.batch_size])}

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)

    def rewind(self) -> None:
        self._batches = self._make()


def to_int8(
    fp32_path: Path,
    out_path: Path,
    calibration: np.ndarray,
    batch_size: int = 8,
    *,
    keep_float: Callable[[onnx.NodeProto], bool] | None = None,
    activations: Literal["uint8", "uint16"] = "uint8",
    calibration_method: Literal["minmax", "percentile"] = "minmax",
) -> Path:
    """Static QDQ int8 (per-channel s8 weights, u8 activations) calibrated on real uint8 tiles.

    The keyword options are the export's defaults; the int8 study (docs/benchmarks.md, retired bench/int8_study.py) varied them (nodes for which `keep_float`
    is true stay float, 16-bit activations, percentile calibration) to find where the int8 error comes from."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if len(calibration) == 0:
        raise AgrilandError("int8 quantization needs calibration tiles; none were given")
    CalibrationDataReader.register(TileReader)
    with tempfile.TemporaryDirectory(prefix="agriland-int8-") as tmp:
        pre_path = Path(tmp) / "pre.onnx"
        # symbolic shape inference needs sympy (not in the stack); ONNX shape inference covers these static CNNs
        quant_pre_process(str(fp32_path), str(pre_path), skip_symbolic_shape=True)
        pre = onnx.load(str(pre_path))
        _name_nodes(pre)
        onnx.save(pre, str(pre_path))
        excluded = preprocessing_nodes(pre) + downstream_nodes(pre, HEAD_ROOT)
        if keep_float is not None:
            excluded += [node.name for node in pre.graph.node if keep_float(node) and node.name not in excluded]
        log.info(
            "int8: calibrating on %d tiles; %d nodes kept float (input preprocessing, DEC head%s)",
            len(calibration),
            len(excluded),
            ", chosen" if keep_float is not None else "",
        )
        try:
            quantize_static(
                str(pre_path),
                str(out_path),
                TileReader(calibration, batch_size),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                reduce_range=False,
                activation_type=QuantType.QUInt16 if activations == "uint16" else QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=excluded,
                calibrate_method=(
                    CalibrationMethod.Percentile if calibration_method == "percentile" else CalibrationMethod.MinMax
                ),
            )
        except Exception as err:  # the quantizer raises assorted errors on graphs it cannot handle
            raise AgrilandError(f"int8 quantization of {fp32_path} failed: {err}") from err
    report = inspect_graph(onnx.load(str(out_path)))
    log.info("int8: %d nodes, %d Transpose(s)", report.n_nodes, report.n_transposes)
    return out_path


# Variants that are an optimisation, not the model: one that misses its gate is dropped, never fatal.
OPTIONAL_VARIANTS: tuple[str, ...] = ("fp16", "int8")


@dataclass(frozen=True)
class VariantOutcome:
    """What happened to one requested variant: exported to `folder`, or dropped with the reason why."""

    variant: str
    status: Literal["exported", "dropped"]
    folder: Path | None = None
    reason: str | None = None
    parity: dict[str, object] | None = None  # the measured figures, also for a dropped variant when known

    def to_json(self) -> dict[str, object]:
        """The entry of this variant in export_summary.json."""
        entry: dict[str, object] = {"status": self.status}
        if self.folder is not None:
            entry["folder"] = str(self.folder)
        if self.reason is not None:
            entry["reason"] = self.reason
        if self.parity is not None:
            entry["parity"] = self.parity
        return entry


def gated(variant: str, build: Callable[[], Path], strict: bool = False) -> VariantOutcome:
    """Run `build` (convert, parity-check and publish one variant) behind its gate.

    fp32 is the model: any failure propagates. For fp16/int8 a missed parity gate or a failed conversion drops
    that variant with a warning and the reason in the outcome, unless `strict` (then it raises as before).
    """
    try:
        folder = build()
    except AgrilandError as err:
        if variant not in OPTIONAL_VARIANTS or strict:
            raise
        parity = err.parity.model_dump(mode="json") if isinstance(err, ParityError) else None
        log.warning("%s variant DROPPED (the fp32 model is unaffected and still exports and serves): %s", variant, err)
        return VariantOutcome(variant, "dropped", reason=str(err), parity=parity)
    return VariantOutcome(variant, "exported", folder=folder)
