"""The package as a user meets it: its version, its type information."""

import subprocess
import sys
from pathlib import Path

import deepreco


def test_version_printed_fast_without_torch():
    code = ("import sys; from deepreco.cli import app\n"
            "try:\n    app(['--version'])\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"deepreco {deepreco.__version__}", "False"]
    assert deepreco.__version__ and deepreco.__version__ != "0+unknown"


def test_typed_package():
    assert (Path(deepreco.__file__).parent / "py.typed").is_file()
