"""twistd spindlex started by socket activation, as systemd starts it (docs/systemd.md).

systemd-socket-activate (from Debian's systemd package) binds the port, waits
for the first connection and only then starts twistd with the listening
socket as fd 3 and LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES set, as a .socket unit does.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.support.harness import OpenSSH
from tests.support.twistd import TWISTD, Twistd, isolated_home
from tests.support.waiting import free_port

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        shutil.which("systemd-socket-activate") is None,
        reason="systemd-socket-activate is not installed (Debian package systemd)",
    ),
]


def test_socket_activation(tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    (served / "activated.txt").write_text("started by the first connection\n")
    port = free_port()
    env = isolated_home(tmp_path)
    # systemd-socket-activate gives its child only the variables named with -E.
    passed = [arg for name in (*env, "PATH", "PYTHONPATH") for arg in ("-E", name)]
    # --fdname sets LISTEN_FDNAMES as systemd always does; Twisted ignores the fds without it.
    activate = [
        "systemd-socket-activate",
        "-l",
        f"127.0.0.1:{port}",
        "--fdname=ssh",
        *passed,
        "--",
        *TWISTD,
    ]
    server = Twistd(
        ["spindlex", "--listen", "systemd:domain=INET:index=0", "--auth", "memory:alice:secret"],
        cwd=served,
        env=env,
        command=activate,
    )
    try:
        # systemd-socket-activate says when its socket is bound; connecting sooner is refused.
        server.wait_for(re.compile(rf"Listening on 127\.0\.0\.1:{port} as 3"))
        # Nothing runs yet: this connection waits in the socket's backlog and starts twistd.
        client = OpenSSH(tmp_path, port)
        result = client.sftp("alice", "secret", "ls\n")
        assert result.returncode == 0, result.stderr + server.log().encode()
        assert b"activated.txt" in result.stdout
        listening = server.wait_for(re.compile(r"listening on (\S+) \((\S+)\)"))
        assert listening[1] == f"127.0.0.1:{port}"
        assert listening[2] == "systemd:domain=INET:index=0"
        server.wait_for(re.compile(r"login alice from 127\.0\.0\.1:\d+ by \S+"))
        server.wait_for(re.compile(rf"connect with: sftp -P {port} alice@127\.0\.0\.1"))
        assert server.stop() == 0, server.log()
    finally:
        server.kill()
