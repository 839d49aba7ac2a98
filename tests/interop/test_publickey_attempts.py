"""OpenSSH offering more keys than max_auth_tries: each refused key counts, as with sshd.

ssh offers a key whose ``.pub`` file it has by a query (no signature) and
signs only once the server says the key would do; a server that counted only
signed requests let it try every key it had.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.harness import OpenSSH, ServerProcess

pytestmark = pytest.mark.interop

KEYS = ("ed25519", "rsa", "ecdsa", "ecdsa384", "ecdsa521")


def test_openssh_offering_many_keys_is_cut_off(
    tmp_path: Path, start_server: Callable[..., ServerProcess], client_keys: dict[str, Path]
) -> None:
    # No key is authorized (SPINDLEX_TEST_AUTHORIZED is unset): every query is refused.
    server = start_server(settings={"auth": {"max_failures": 3}})
    client = OpenSSH(tmp_path, server.port)
    identities = [arg for name in KEYS for arg in ("-i", str(client_keys[name]))]
    options = client.options(
        extra=["PreferredAuthentications=publickey", "IdentitiesOnly=yes", "LogLevel=DEBUG1"]
    )
    result = subprocess.run(
        ["ssh", *options, "-p", str(server.port), *identities, "alice@127.0.0.1", "true"],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 255
    assert "Too many authentication failures" in stderr
    # Three keys offered (queries, never signed), then the disconnect; not five.
    assert len(re.findall(r"Offering public key", stderr)) == 3, stderr
    assert "Server accepts key" not in stderr
    assert server.log().count("denied publickey for alice") == 3
    healthy = client.ssh("alice", "echo", "in", password="secret")
    assert (healthy.returncode, healthy.stdout) == (0, b"in\n")
