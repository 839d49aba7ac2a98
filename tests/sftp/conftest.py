"""Fixtures of the SFTP tests: the served tree on each storage."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sftp.trees import STORAGES, Tree, make_tree


@pytest.fixture(params=STORAGES)
def tree(request: pytest.FixtureRequest, root: Path) -> Tree:
    """The served tree, once on the local disk and once in memory."""
    return make_tree(request.param, root)
