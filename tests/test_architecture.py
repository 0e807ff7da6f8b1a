"""The layering of DESIGN.md holds: import-linter's contracts (pyproject.toml) all keep."""
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def test_imports_point_down_the_layers():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
