"""Plain BentoML services the overhead benchmark measures agriland against: a constant answer, and decode+encode.

Both take the very request /segment takes (multipart, one `file` part, a JPEG tile) through BentoML's own typed
parameter (`file: Path`), written as the BentoML docs write them, with BentoML's default configuration (access
log, tracing middleware, metrics). `BENCH_LEAN=1` gives them agriland's service configuration instead (no access
log, tracing middleware skipped), so the report can tell configuration from code.
"""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path
from typing import Annotated

import bentoml
import numpy as np
from bentoml.validators import ContentType
from PIL import Image

LEAN = os.environ.get("BENCH_LEAN", "0") == "1"
CONFIG: dict = {"workers": 1, "traffic": {"timeout": 120}}
if LEAN:
    CONFIG |= {"logging": {"access": {"enabled": False}}, "tracing": {"excluded_urls": ["."]}}
CONSTANT = {"results": [{"name": "tile", "arable_fraction": 0.5}]}
ImageFile = Annotated[Path, ContentType("image/*")]


@bentoml.service(name="ceiling_constant", **CONFIG)
class Constant:
    """POST /segment: parses the upload, answers a constant (BentoML's own floor per request)."""

    @bentoml.api(route="/segment")
    async def segment(self, file: ImageFile) -> dict:
        return CONSTANT


@bentoml.service(name="ceiling_decode_encode", **CONFIG)
class DecodeEncode:
    """POST /segment: decodes the JPEG, makes a 0/1 mask without a model, answers it as base64 PNG in JSON."""

    @bentoml.api(route="/segment")
    async def segment(self, file: ImageFile) -> dict:
        rgb = np.asarray(Image.open(file).convert("RGB"))
        mask = (rgb[..., 1] > 100).astype(np.uint8) * 255
        buffer = io.BytesIO()
        Image.fromarray(mask, mode="L").save(buffer, format="PNG")
        return {"results": [{"name": file.name, "arable_fraction": float(mask.mean() / 255),
                             "mask_png_base64": base64.b64encode(buffer.getvalue()).decode("ascii")}]}
