"""The package's layering, as written in pyproject.toml's import-linter contracts, and module size.

``lint-imports`` checks that spindlex_tw has no import cycle, that the
sans-IO layers import neither Twisted nor the layers above them, that tx/
imports neither server/ nor the twistd product, and that server/ does not
import the twistd product (see docs/architecture.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.harness import ROOT

PACKAGE = ROOT / "spindlex_tw"
MAX_LINES = 600


def test_import_contracts_hold() -> None:
    # The console script of the import-linter package, run by this interpreter,
    # against this checkout (not whatever copy of spindlex_tw is installed).
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout, result.stdout


def test_no_module_is_over_600_lines() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    assert sizes, "no modules found"
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_the_lint_runs_against_this_checkout() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", "import spindlex_tw; print(spindlex_tw.__file__)"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert Path(probe.stdout.strip()).parent == PACKAGE
