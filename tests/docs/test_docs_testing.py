"""docs/recipes.md's tests of a user's server (trial, plain pytest), each run as its user runs it.

The pytest-twisted one is test_docs_guides.test_recipe_pytest.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.support import covers, python_env, source

pytestmark = pytest.mark.interop


def _run(tmp_path: Path, block: str, *command: str) -> subprocess.CompletedProcess[bytes]:
    (tmp_path / "test_my_server.py").write_text(source(block))
    return subprocess.run(
        [sys.executable, "-m", *command],
        cwd=tmp_path,
        env=python_env(tmp_path),
        capture_output=True,
        timeout=180,
    )


@covers("recipe-trial")
def test_recipe_trial(tmp_path: Path) -> None:
    result = _run(tmp_path, "recipe-trial", "twisted.trial", "test_my_server")
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    # trial fails a test that leaves the reactor dirty: both passed, nothing left.
    assert b"PASSED (successes=2)" in result.stdout


@covers("recipe-pytest-threaded")
def test_recipe_pytest_threaded(tmp_path: Path) -> None:
    pytest_args = ["pytest", "-q", "-p", "no:cacheprovider", "test_my_server.py"]
    result = _run(tmp_path, "recipe-pytest-threaded", *pytest_args, "-p", "no:twisted")
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert b"1 passed" in result.stdout


def test_threaded_fixture_says_what_to_do_under_pytest_twisted(tmp_path: Path) -> None:
    pytest_args = ["pytest", "-q", "-p", "no:cacheprovider", "test_my_server.py"]
    result = _run(tmp_path, "recipe-pytest-threaded", *pytest_args)
    assert result.returncode == 1
    assert b"use the spindlex_server fixture in async tests" in result.stdout
    assert b"-p no:twisted" in result.stdout
