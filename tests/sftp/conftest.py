"""Fixtures of the SFTP tests: the served tree on each storage."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sftp.served import Served
from tests.sftp.trees import STORAGES, Tree, make_tree


@pytest.fixture(params=STORAGES)
def tree(request: pytest.FixtureRequest, root: Path) -> Tree:
    """The served tree, once on the local disk and once in memory."""
    return make_tree(request.param, root)


@pytest.fixture(params=STORAGES)
def served(request: pytest.FixtureRequest, root: Path, tmp_path: Path) -> Served:
    """What the stdio server serves (sftp -D, Paramiko), once on the disk and once in memory."""
    return Served(request.param, root, tmp_path / "memory.state")
