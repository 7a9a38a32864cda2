"""AGRILAND_* settings: blanks, normalisation, refusals by variable name, the process environment, frozen values."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from contract.artifacts import VARIANTS
from contract.errors import AgrilandError
from serving.config import ServeSettings


def test_switches_and_auto_from_the_environment() -> None:
    settings = ServeSettings.from_env(
        {
            "AGRILAND_ACCESS_LOG": "1",
            "AGRILAND_TRACING": "off",
            "AGRILAND_WORKERS": "auto",
            "AGRILAND_WORKER_MEMORY_MB": "256",
        }
    )
    assert settings.access_log is True and settings.tracing is False
    assert isinstance(settings.workers, int) and settings.workers >= 1  # auto is resolved to a number
    defaults = ServeSettings.from_env({})
    assert defaults.access_log is False and defaults.tracing is False and defaults.workers == 1


@pytest.mark.parametrize(
    ("key", "value"), [("AGRILAND_ACCESS_LOG", "maybe"), ("AGRILAND_WORKERS", "many"), ("AGRILAND_WORKERS", "0")]
)
def test_bad_values_are_refused_by_name(key: str, value: str) -> None:
    with pytest.raises(AgrilandError, match=key):
        ServeSettings.from_env({key: value})


def test_blank_values_mean_the_default() -> None:
    settings = ServeSettings.from_env(
        {
            "AGRILAND_MAX_TILES": "",
            "AGRILAND_UNET_VARIANT": "   ",
            "AGRILAND_PROVIDERS": " ",
            "AGRILAND_ORT_THREADS": "",
            "AGRILAND_MODELS_DIR": "",
        }
    )
    defaults = ServeSettings.from_env({})
    assert settings == defaults
    assert (settings.max_tiles, settings.unet_variant, settings.providers) == (64, "fp32", "auto")
    assert settings.ort_threads is None and settings.models_dir == Path("models")


def test_values_are_stripped_and_lower_cased() -> None:
    settings = ServeSettings.from_env(
        {
            "AGRILAND_PROVIDERS": " CUDA ",
            "AGRILAND_UNET_VARIANT": " INT8, FP32 ",
            "AGRILAND_DEC_VARIANT": "Fp32",
            "AGRILAND_MAX_TILES": " 12 ",
            "AGRILAND_MODELS_DIR": "  /srv/models ",
        }
    )
    assert settings.providers == "cuda"
    assert settings.unet_variant == "int8, fp32" and settings.dec_variant == "fp32"
    assert all(v.strip() in VARIANTS for v in settings.unet_variant.split(","))
    assert settings.max_tiles == 12 and settings.models_dir == Path("/srv/models")


def test_unknown_variant_is_refused_naming_its_variable() -> None:
    with pytest.raises(AgrilandError, match="AGRILAND_UNET_VARIANT='fp64'") as raised:
        ServeSettings.from_env({"AGRILAND_UNET_VARIANT": "fp64"})
    assert "int8,fp32" in str(raised.value)  # says what would be accepted
    with pytest.raises(AgrilandError, match="AGRILAND_DEC_VARIANT"):
        ServeSettings.from_env({"AGRILAND_DEC_VARIANT": "int8,,fp32"})  # an empty entry in the list


def test_unknown_provider_is_refused_and_every_problem_is_named() -> None:
    with pytest.raises(AgrilandError, match="AGRILAND_PROVIDERS='rocm'"):
        ServeSettings.from_env({"AGRILAND_PROVIDERS": "rocm"})
    with pytest.raises(AgrilandError) as raised:
        ServeSettings.from_env({"AGRILAND_PROVIDERS": "rocm", "AGRILAND_MAX_TILES": "-1"})
    assert "AGRILAND_PROVIDERS" in str(raised.value) and "AGRILAND_MAX_TILES" in str(raised.value)


def test_variables_of_other_prefixes_and_unknown_names_are_ignored() -> None:
    settings = ServeSettings.from_env({"MAX_TILES": "3", "AGRILAND_NO_SUCH_SETTING": "1", "OTHER_WORKERS": "x"})
    assert settings == ServeSettings.from_env({})


def test_from_env_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(ServeSettings.model_fields):
        monkeypatch.delenv(f"AGRILAND_{name.upper()}", raising=False)
    monkeypatch.setenv("AGRILAND_MAX_TILES", "7")
    monkeypatch.setenv("AGRILAND_PROVIDERS", "CPU")
    monkeypatch.setenv("AGRILAND_ORT_THREADS", "")
    settings = ServeSettings.from_env()
    assert (settings.max_tiles, settings.providers, settings.ort_threads) == (7, "cpu", None)
    monkeypatch.setenv("AGRILAND_MAX_BATCH_SIZE", "lots")
    with pytest.raises(AgrilandError, match="AGRILAND_MAX_BATCH_SIZE='lots'"):
        ServeSettings.from_env()


def test_an_explicit_mapping_replaces_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGRILAND_MAX_TILES", "7")
    assert ServeSettings.from_env({}).max_tiles == 64
    assert ServeSettings.from_env({"AGRILAND_MAX_TILES": "9"}).max_tiles == 9
    assert ServeSettings.from_env().max_tiles == 7  # and the process environment is read again afterwards


def test_settings_are_frozen() -> None:
    settings = ServeSettings.from_env({"AGRILAND_MAX_TILES": "5"})
    with pytest.raises(ValidationError):
        settings.max_tiles = 6  # type: ignore[misc]
    assert settings.max_tiles == 5


def test_onnx_runtime_settings_live_in_serve_settings() -> None:
    from inference.models.runtime import RuntimeOptions

    assert ServeSettings.from_env({}).runtime() == RuntimeOptions()
    settings = ServeSettings.from_env(
        {
            "AGRILAND_TTA_VIEWS": "1",
            "AGRILAND_ORT_SPINNING": "1",
            "AGRILAND_ORT_CPU_ARENA": "0",
            "AGRILAND_CUDNN_CONV_ALGO_SEARCH": "heuristic",
        }
    )
    assert settings.runtime() == RuntimeOptions(
        tta_views=1, spinning=True, cpu_arena=False, conv_algo_search="HEURISTIC"
    )
    with pytest.raises(AgrilandError, match="AGRILAND_TTA_VIEWS"):
        ServeSettings.from_env({"AGRILAND_TTA_VIEWS": "3"})
