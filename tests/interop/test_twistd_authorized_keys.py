"""twistd spindlex --authorized-keys with OpenSSH: keys limited by from=, command=, restrict."""

from __future__ import annotations

import getpass
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.harness import OpenSSH
from tests.support.keyed import keyed_twistd
from tests.support.twistd import Twistd

pytestmark = pytest.mark.interop

USER = getpass.getuser()

# One key per line, each with the options under test.
LINES = {
    "plain": "",
    "elsewhere": 'from="10.9.9.9,192.0.2.0/24" ',
    "loopback": 'from="127.0.0.0/8,!127.0.0.2" ',
    "forced": 'command="echo forced: $SSH_ORIGINAL_COMMAND" ',
    "restricted": "restrict ",
    "restricted_pty": "restrict,pty ",
    "no_pty": "no-pty ",
    "open_one": 'permitopen="127.0.0.1:1" ',
    "unknown": 'tunnel="0" ',
}


@pytest.fixture(scope="module")
def keyed_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Twistd, OpenSSH, dict[str, Path]]]:
    with keyed_twistd(tmp_path_factory.mktemp("authorized"), LINES) as setup:
        yield setup


def _ssh(
    setup: tuple[Twistd, OpenSSH, dict[str, Path]],
    key: str,
    *command: str,
    args: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[bytes]:
    _, client, keys = setup
    return client.ssh(USER, *command, identity=keys[key], args=args, extra=["LogLevel=INFO"])


def test_from_mismatch_denies(keyed_server: tuple[Twistd, OpenSSH, dict[str, Path]]) -> None:
    denied = _ssh(keyed_server, "elsewhere", "true")
    assert denied.returncode == 255
    assert b"Permission denied" in denied.stderr
    keyed_server[0].wait_for(re.compile(r"key refused from 127\.0\.0\.1 by from="))
    allowed = _ssh(keyed_server, "loopback", "echo", "in")
    assert (allowed.returncode, allowed.stdout) == (0, b"in\n")


def test_other_names_are_not_granted(
    keyed_server: tuple[Twistd, OpenSSH, dict[str, Path]],
) -> None:
    _, client, keys = keyed_server
    result = client.ssh(USER + "x", "true", identity=keys["plain"])
    assert result.returncode == 255


def test_command_is_forced(keyed_server: tuple[Twistd, OpenSSH, dict[str, Path]]) -> None:
    result = _ssh(keyed_server, "forced", "rm", "-rf", "/nothing")
    assert (result.returncode, result.stdout) == (0, b"forced: rm -rf /nothing\n")
    shell = _ssh(keyed_server, "forced")
    assert shell.stdout == b"forced:\n"


def test_restrict_forbids_pty(keyed_server: tuple[Twistd, OpenSSH, dict[str, Path]]) -> None:
    plain = _ssh(keyed_server, "plain", "tty", args=("-tt",))
    assert plain.returncode == 0 and plain.stdout.startswith(b"/dev/pts/")
    for key in ("restricted", "no_pty"):
        refused = _ssh(keyed_server, key, "tty", args=("-tt",))
        assert b"PTY allocation request failed" in refused.stderr, key
    again = _ssh(keyed_server, "restricted_pty", "tty", args=("-tt",))
    assert again.returncode == 0 and again.stdout.startswith(b"/dev/pts/")


def _stdio_forward(
    setup: tuple[Twistd, OpenSSH, dict[str, Path]], key: str
) -> subprocess.CompletedProcess[bytes]:
    """``ssh -W`` to the server's own port: a direct-tcpip channel, answered by its banner."""
    _, client, _ = setup
    return _ssh(setup, key, args=("-W", f"127.0.0.1:{client.port}"))


def test_restrict_forbids_forwarding(
    keyed_server: tuple[Twistd, OpenSSH, dict[str, Path]],
) -> None:
    allowed = _stdio_forward(keyed_server, "plain")
    assert allowed.stdout.startswith(b"SSH-2.0-"), allowed.stderr
    for key in ("restricted", "restricted_pty", "open_one"):
        refused = _stdio_forward(keyed_server, key)
        assert refused.returncode == 255, key
        assert b"administratively prohibited" in refused.stderr, key
        assert not refused.stdout


def test_unenforceable_option_refuses_the_key(
    keyed_server: tuple[Twistd, OpenSSH, dict[str, Path]],
) -> None:
    result = _ssh(keyed_server, "unknown", "true")
    assert result.returncode == 255
    keyed_server[0].wait_for(
        re.compile(r"authorized_keys line 9: unsupported option 'tunnel'; key ignored")
    )
