"""The `agriland` dispatcher: help, unknown commands, and lazy imports."""

import subprocess
import sys

from agriland.cli import COMMANDS, main


def test_help_lists_every_command(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_unknown_command_is_exit_2(capsys) -> None:
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_every_command_module_exists() -> None:
    import importlib.util

    for name, (target, _) in COMMANDS.items():
        module = target.split(":")[0]
        assert importlib.util.find_spec(module) is not None, f"{name}: module {module} missing"


def test_dispatcher_imports_no_tensorflow() -> None:
    code = "import sys; import agriland.cli; assert 'tensorflow' not in sys.modules; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "ok"
