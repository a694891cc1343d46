"""The linter (ruff, configured in pyproject.toml) finds nothing: unused imports, undefined
names and the like fail the suite rather than wait for a reader to notice."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    if shutil.which("ruff") is None and subprocess.run([sys.executable, "-m", "ruff", "--version"],
                                                       capture_output=True).returncode != 0:
        pytest.skip("ruff is not installed (it is in the test extra: pip install -e '.[test]')")
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "src", "tests", "benchmarks", "scripts", "docs"],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-1000:]
