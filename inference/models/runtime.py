"""How ONNX Runtime runs a model in this process: test-time rotations, thread spinning, memory arena, cuDNN search.

The library takes these as one explicit `RuntimeOptions`; only front ends read them from the environment: the
service through `ServeSettings` (AGRILAND_TTA_VIEWS, AGRILAND_ORT_SPINNING, AGRILAND_ORT_CPU_ARENA,
AGRILAND_CUDNN_CONV_ALGO_SEARCH), the CLI, batch actors and the bench/evaluation scripts through `from_env`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from contract.errors import AgrilandError

ConvAlgoSearch = Literal["EXHAUSTIVE", "HEURISTIC", "DEFAULT"]
TtaViews = Literal[1, 2, 4]
CONV_ALGO_SEARCHES: tuple[str, ...] = ("EXHAUSTIVE", "HEURISTIC", "DEFAULT")
TTA_ENV = "AGRILAND_TTA_VIEWS"  # an operator may lower the manifest's views for speed (1 = off)
SPINNING_ENV = "AGRILAND_ORT_SPINNING"
CPU_ARENA_ENV = "AGRILAND_ORT_CPU_ARENA"
CONV_ALGO_SEARCH_ENV = "AGRILAND_CUDNN_CONV_ALGO_SEARCH"
_TRUE, _FALSE = ("1", "true", "on", "yes"), ("0", "false", "off", "no")


@dataclass(frozen=True)
class RuntimeOptions:
    """ONNX Runtime settings of one process (defaults: the measured choices of docs/benchmarks.md)."""

    # the manifest's rotations, or fewer for speed (never more than the model was exported and measured with)
    tta_views: TtaViews | None = None
    # CPU thread spinning: off, the cores stay free for decoding and the event loop between runs (section 2)
    spinning: bool = False
    # the CPU memory arena: on, the largest batch's activations are kept for the process's lifetime
    cpu_arena: bool = True
    # cuDNN convolution algorithm search of the CUDA provider (`python -m bench.gpu` measures all three)
    conv_algo_search: ConvAlgoSearch = "EXHAUSTIVE"

    def views(self, manifest_views: int) -> int:
        """The rotations a model exported with `manifest_views` runs with."""
        return manifest_views if self.tta_views is None else min(self.tta_views, manifest_views)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RuntimeOptions:
        """The options named by AGRILAND_* variables (for front ends; the library never reads the environment)."""
        env = os.environ if environ is None else environ
        views = (env.get(TTA_ENV) or "").strip()
        if views and views not in ("1", "2", "4"):
            raise AgrilandError(f"{TTA_ENV} must be 1, 2 or 4, got {views!r}")
        search = (env.get(CONV_ALGO_SEARCH_ENV) or "EXHAUSTIVE").strip().upper()
        if search not in CONV_ALGO_SEARCHES:
            raise AgrilandError(f"{CONV_ALGO_SEARCH_ENV}={search!r} is not one of {', '.join(CONV_ALGO_SEARCHES)}")
        return cls(
            tta_views=int(views) if views else None,  # type: ignore[arg-type]
            spinning=_flag(env, SPINNING_ENV, False),
            cpu_arena=_flag(env, CPU_ARENA_ENV, True),
            conv_algo_search=search,  # type: ignore[arg-type]
        )


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    """A 1/0 (true/false, on/off) switch; anything else is refused with the variable's name."""
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise AgrilandError(f"{name} must be 1 or 0, got {raw!r}")
