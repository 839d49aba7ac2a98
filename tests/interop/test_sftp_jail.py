"""Jail escapes tried by OpenSSH's sftp over SSH: every way out ends inside the root.

The sans-IO tests (tests/sftp/test_jail.py) cover the same paths message by
message; here a real client sends them: ``..``, absolute host paths, symlinks
that were already in the root, symlinks and hard links the client makes, and
writes, renames and mode changes through them.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.harness import OpenSSH, ServerProcess

pytestmark = pytest.mark.interop

CANARY = b"canary: must never be read or changed"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A neighbour of the root holding the canary file."""
    path = tmp_path / "outside"
    path.mkdir()
    (path / "canary").write_bytes(CANARY)
    os.chmod(path / "canary", 0o644)
    return path


@pytest.fixture
def jailed(
    start_server: Callable[..., ServerProcess],
    client_keys: dict[str, Path],
    root: Path,
    outside: Path,
) -> ServerProcess:
    (root / "inside").write_bytes(b"inside")
    # Links already in the root when the session starts.
    os.symlink("../outside", root / "out_rel")
    os.symlink(str(outside), root / "out_abs")
    os.symlink("../outside/canary", root / "canary_link")
    return start_server(
        env={
            "SPINDLEX_TEST_AUTHORIZED": str(client_keys["authorized"]),
            "SPINDLEX_TEST_SFTP_ROOT": str(root),
        }
    )


def _sftp(
    server: ServerProcess, client_keys: dict[str, Path], tmp_path: Path, batch: str
) -> subprocess.CompletedProcess[str]:
    """``sftp -b -``: each line starts with ``-`` so a refused command does not stop the rest."""
    client = OpenSSH(tmp_path, server.port)
    return client.sftp_with_key("alice", client_keys["ed25519"], batch)


def _canary_intact(outside: Path) -> None:
    assert sorted(os.listdir(outside)) == ["canary"]
    assert (outside / "canary").read_bytes() == CANARY
    assert stat.S_IMODE((outside / "canary").stat().st_mode) == 0o644


def test_reads_through_dotdot_absolute_paths_and_links_stay_inside(
    jailed: ServerProcess,
    client_keys: dict[str, Path],
    root: Path,
    outside: Path,
    tmp_path: Path,
) -> None:
    got = tmp_path / "got"
    got.mkdir()
    sources = [
        "../outside/canary",
        "../../outside/canary",
        "/../outside/canary",
        f"{outside}/canary",  # the host's absolute path is a path under the root
        "out_rel/canary",  # a link that was already there, relative target
        "out_abs/canary",  # and one with an absolute target
        "canary_link",
        "made_rel",  # links the client makes below
        "made_abs/canary",
    ]
    batch = "-symlink ../outside/canary made_rel\n" f"-symlink {outside} made_abs\n"
    batch += "".join(f"-get {source} {got}/{i}\n" for i, source in enumerate(sources))
    batch += f"get inside {got}/inside\n"
    result = _sftp(jailed, client_keys, tmp_path, batch)
    assert result.returncode == 0, result.stdout + result.stderr
    # Only the file that is inside came back; every other get was refused.
    assert os.listdir(got) == ["inside"]
    # Each refusal is "no such file" (a link's target is looked up under the root).
    refused = [
        line
        for line in result.stderr.splitlines()
        if line.endswith("not found.") or line.endswith("No such file or directory")
    ]
    assert len(refused) == len(sources), result.stderr
    # The links the client made hold its text, and they are links in the root.
    assert os.readlink(root / "made_rel") == "../outside/canary"
    assert os.readlink(root / "made_abs") == str(outside)
    _canary_intact(outside)


def test_writes_links_renames_and_modes_cannot_reach_out(
    jailed: ServerProcess,
    client_keys: dict[str, Path],
    root: Path,
    outside: Path,
    tmp_path: Path,
) -> None:
    evil = tmp_path / "evil"
    evil.write_bytes(b"overwritten")
    attempts = [
        f"put {evil} ../outside/canary",
        f"put {evil} out_rel/canary",
        f"put {evil} out_abs/new",
        f"put {evil} canary_link",
        "symlink ../outside made_dir",
        f"put {evil} made_dir/new",
        "ln ../outside/canary hard_dotdot",  # hard links the client asks for
        "ln out_rel/canary hard_via_link",
        f"ln {outside}/canary hard_absolute",
        "rename inside ../outside/moved",
        "rename inside out_rel/moved",
        "chmod 777 ../outside/canary",
        "chmod 777 out_rel/canary",
        "chmod 777 canary_link",
        "rm out_rel/canary",
        "mkdir ../outside/made",
        "mkdir out_rel/made",
    ]
    result = _sftp(jailed, client_keys, tmp_path, "".join(f"-{a}\n" for a in attempts))
    assert result.returncode == 0, result.stdout + result.stderr
    _canary_intact(outside)
    # What did happen, happened in the root: the file "inside" never moved,
    # and no hard link shares the canary's inode.
    assert (root / "inside").read_bytes() == b"inside"
    canary_inode = (outside / "canary").stat().st_ino
    for entry in root.rglob("*"):
        if not entry.is_symlink():
            assert entry.stat().st_ino != canary_inode, entry
    assert os.stat(outside / "canary").st_nlink == 1
