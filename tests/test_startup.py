"""Start-up stays light: help, plugin listing and argument errors never import torch."""
import subprocess
import sys

import pytest

PROBE = """
import sys
from gencore.cli import main
sys.argv = ["gen", *{args!r}]
try:
    main()
except SystemExit as exc:
    code = exc.code
print("TORCH" if "torch" in sys.modules else "NO-TORCH", code, file=sys.stderr)
"""


def probe(*args):
    result = subprocess.run([sys.executable, "-c", PROBE.format(args=list(args))], capture_output=True, text=True,
                            timeout=120)
    last = result.stderr.strip().splitlines()[-1]
    return last, result


@pytest.mark.parametrize("args, code", [
    (["--help"], 0),
    (["train", "--help"], 0),
    (["plugins"], 0),
    (["train", "no-such-domain"], 2),
    (["train", "images", "--arch", "bogus"], 2),
    (["train", "images", "--epochs", "0"], 2),
    (["train", "images", "--bogus-option", "3"], 2),
    (["sample", "--n", "zero"], 2),
    (["sample", "--format", "bogus"], 2),
    (["train", "images", "--precision", "fp8"], 2),
])
def test_no_torch_on_startup_paths(args, code):
    last, result = probe(*args)
    assert last == f"NO-TORCH {code}", result.stderr


def test_usage_error_is_one_line():
    last, result = probe("sample", "--n", "zero")
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr  # the error line, then the probe's own line
    assert lines[0].startswith("gen: error:") and "--n" in lines[0]
    assert "Traceback" not in result.stderr


def test_help_lists_domain_options():
    result = subprocess.run([sys.executable, "-m", "gencore", "train", "--help"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0
    assert "--resize" in result.stdout and "e.g." in result.stdout
    assert "(default: 1)" in " ".join(result.stdout.split())  # --hop's default survives Rich's markup
