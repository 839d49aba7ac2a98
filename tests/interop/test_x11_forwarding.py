"""X11 forwarding (ssh -Y) through twistd spindlex --exec --x11-forwarding.

The client's DISPLAY is a fake X server the test owns (a TCP listener that
records bytes). The remote command reads its cookie with ``xauth list``,
connects to its $DISPLAY and sends an X11 connection setup with that cookie
and a payload: OpenSSH's client checks the cookie, swaps in its own and
passes the rest on, so the payload reaching the fake proves the whole path.
Also here: authorized_keys ``environment=`` with --permit-user-environment.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.harness import OpenSSH
from tests.support.keyed import keyed_twistd
from tests.support.twistd import Twistd

pytestmark = pytest.mark.interop

USER = getpass.getuser()
LINES = {
    "plain": 'environment="SPX_GREETING=hello world",environment="SPX_GREETING=second" ',
    "no_x11": "no-x11-forwarding ",
}
Setup = tuple[Twistd, OpenSSH, dict[str, Path]]

# Run on the server: the X11 connection setup (little-endian, protocol 11.0)
# with the cookie xauth holds for $DISPLAY, then a payload.
X_CLIENT = r"""
import os, socket, struct, subprocess
display = os.environ["DISPLAY"]
number = int(display.split(":")[1].split(".")[0])
entry = subprocess.run(["xauth", "list", display], capture_output=True, text=True).stdout.split()
name, cookie = entry[1].encode(), bytes.fromhex(entry[2])
pad = lambda b: b + b"\0" * (-len(b) % 4)
setup = b"l\0" + struct.pack("<HHHH", 11, 0, len(name), len(cookie)) + b"\0\0"
with socket.create_connection(("127.0.0.1", 6000 + number), timeout=30) as conn:
    conn.sendall(setup + pad(name) + pad(cookie) + b"payload from the X client")
    conn.shutdown(socket.SHUT_WR)
    conn.recv(1)
print("display", display, "xauthority", os.environ["XAUTHORITY"])
"""


class FakeXServer:
    """A TCP listener on 127.0.0.1:6000+N: records what the first connection sends."""

    def __init__(self) -> None:
        self.received = b""
        self.done = threading.Event()
        self.sock = socket.socket()
        for number in range(60, 200):
            try:
                self.sock.bind(("127.0.0.1", 6000 + number))
            except OSError:
                continue
            self.display = f"127.0.0.1:{number}"
            break
        else:
            pytest.skip("no free X display port from 6060")
        self.sock.listen(1)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(30)
            try:
                while chunk := conn.recv(65536):
                    self.received += chunk
            except OSError:
                pass
        self.done.set()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("x11")
    args = ["--x11-forwarding", "--permit-user-environment"]
    with keyed_twistd(tmp, LINES, args) as setup:
        yield setup


def _ssh(
    setup: Setup, key: str, command: str, display: str | None = None
) -> subprocess.CompletedProcess[str]:
    _, client, keys = setup
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "XAUTHORITY")}
    if display is not None:
        env["DISPLAY"] = display
    # No xauth data for the fake display: ssh -Y then makes up its own cookie.
    env["XAUTHORITY"] = str(client.tmp / "client.Xauthority")
    argv = [
        "ssh", *client.options(extra=["LogLevel=INFO"]), "-p", str(client.port),
        "-i", str(keys[key]), "-o", "IdentitiesOnly=yes", "-Y", f"{USER}@127.0.0.1", command,
    ]  # fmt: skip
    return subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


def test_x11_connection_reaches_the_clients_display(server: Setup) -> None:
    if shutil.which("xauth") is None:
        pytest.skip("xauth not installed: apt-get install xauth")
    fake = FakeXServer()
    try:
        result = _ssh(server, "plain", f"python3 -c '{X_CLIENT}'", fake.display)
        assert result.returncode == 0, result.stderr
        assert fake.done.wait(30)
    finally:
        fake.close()
    assert fake.received.endswith(b"payload from the X client")
    # DISPLAY as sshd sets it, XAUTHORITY in a private directory of the session's own.
    match = re.search(r"display localhost:(\d+)\.0 xauthority (\S+)", result.stdout)
    assert match is not None, result.stdout
    assert int(match[1]) >= 10
    assert "spindlex-x11-" in match[2]
    server[0].wait_for(re.compile(r"X11 forwarding for .* on display localhost:\d+\.0"))


def test_key_option_refuses_x11(server: Setup) -> None:
    result = _ssh(server, "no_x11", 'echo "display=$DISPLAY"', "127.0.0.1:99")
    assert result.stdout == "display=\n"
    assert "X11 forwarding request failed" in result.stderr
    server[0].wait_for(re.compile(r"refused x11 request .*authorized_keys options"))


def test_environment_option_with_permission(server: Setup) -> None:
    result = _ssh(server, "plain", 'echo "greeting=$SPX_GREETING"')
    # The first environment= of a name counts, as in sshd.
    assert (result.returncode, result.stdout) == (0, "greeting=hello world\n")
