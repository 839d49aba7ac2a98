"""SSHServerManager.add_host_certificate: OpenSSH trusts the server through its host CA.

The script starts a manager with a plain host key; OpenSSH with only an
``@cert-authority`` line in known_hosts and ``StrictHostKeyChecking=yes``
refuses it. Once the running manager is given the key's host certificate,
the same client connects without a prompt.
"""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.interop.test_manager import Script
from tests.support.harness import OpenSSH

pytestmark = pytest.mark.interop

SCRIPT = textwrap.dedent(
    """
    import sys

    from spindlex_tw.crypto.pkey import PKey
    from spindlex_tw.protocol.constants import AUTH_FAILED, AUTH_SUCCESSFUL
    from spindlex_tw.server.ssh_server import SSHServer, SSHServerManager

    class Server(SSHServer):
        def check_auth_password(self, username, password):
            return AUTH_SUCCESSFUL if password == "pw" else AUTH_FAILED

    manager = SSHServerManager(
        Server(), PKey.from_private_key_file(sys.argv[1]), "127.0.0.1", 0
    )
    manager.start_server()
    print("PORT", manager.get_port(), flush=True)
    for line in sys.stdin:
        with open(line.strip()) as handle:
            manager.add_host_certificate(handle.read())
        print('"added"', flush=True)
    """
)


def test_added_host_certificate_is_trusted_through_its_ca(tmp_path: Path) -> None:
    for name in ("host", "host_ca"):
        subprocess.run(
            ["ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-f", str(tmp_path / name)],
            check=True,
            timeout=30,
        )
    sign = ["ssh-keygen", "-q", "-s", str(tmp_path / "host_ca"), "-h", "-I", "manager"]
    subprocess.run([*sign, "-n", "127.0.0.1", str(tmp_path / "host.pub")], check=True, timeout=30)
    known = tmp_path / "known_ca"
    known.write_text(f"@cert-authority 127.0.0.1 {(tmp_path / 'host_ca.pub').read_text()}")
    script = Script(tmp_path, SCRIPT, str(tmp_path / "host"))
    try:
        client = OpenSSH(tmp_path, script.port)
        strict = ["StrictHostKeyChecking=yes", f"UserKnownHostsFile={known}"]
        before = client.ssh("u", "true", password="pw", extra=strict)
        assert before.returncode == 255
        assert b"Host key verification failed" in before.stderr
        assert script.ask(str(tmp_path / "host-cert.pub")) == "added"
        after = client.ssh("u", password="pw", extra=[*strict, "LogLevel=DEBUG1"])
        assert b"Server host certificate: ssh-ed25519-cert-v01@openssh.com" in after.stderr
        assert b"Host key verification failed" not in after.stderr
        assert b"Authenticated to 127.0.0.1" in after.stderr
    finally:
        script.close()
