"""docs/hooks.md's Kerberos example, run as written against a real MIT KDC and OpenSSH."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.docs.support import covers, source, start_script, stop, with_ports
from tests.support.harness import OpenSSH
from tests.support.kdc import HOST, KDC, REALM, missing_tools
from tests.support.waiting import free_port

pytestmark = pytest.mark.interop


@covers("hooks-gssapi")
def test_kerberos_example(tmp_path: Path) -> None:
    if (reason := missing_tools()) is not None:
        pytest.skip(reason)
    pytest.importorskip(
        "gssapi", reason="gssapi not installed: pip install 'spindlex-tw[kerberos]' (libkrb5-dev)"
    )
    kdc = KDC(tmp_path / "kdc")
    try:
        keytab = tmp_path / "host.keytab"
        kdc.add_host(HOST, keytab)
        tickets = {}
        for principal in ("alice", "deploy/ops"):
            kdc.add_user(principal, "pw-" + principal.replace("/", "-"))
            tickets[principal] = tmp_path / f"{principal.replace('/', '-')}.ccache"
            kdc.kinit(principal, "pw-" + principal.replace("/", "-"), tickets[principal])
        port = free_port()
        proc = start_script(
            tmp_path,
            with_ports(source("hooks-gssapi"), {2222: port}),
            KRB5_KTNAME=str(keytab),
            **kdc.env,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().startswith(b"Listening on port")
            client = OpenSSH(tmp_path, port)

            def ssh(user: str, ticket: str, *extra: str) -> subprocess.CompletedProcess[str]:
                options = ["GSSAPIAuthentication=yes", *extra]
                return subprocess.run(
                    ["ssh", *client.options(extra=options), "-p", str(port), f"{user}@{HOST}",
                     "whoami"],
                    env=kdc.client_env(tickets[ticket]),
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    text=True,
                    timeout=60,
                )  # fmt: skip

            plain = ssh("alice", "alice")
            assert (plain.returncode, plain.stdout) == (0, f"alice is alice@{REALM}\n"), (
                plain.stderr
            )
            delegated = ssh("alice", "alice", "GSSAPIDelegateCredentials=yes")
            assert delegated.returncode == 0, delegated.stderr
            assert f"Default principal: alice@{REALM}" in delegated.stdout
            ops = ssh("ops", "deploy/ops")
            assert ops.stdout == f"ops is deploy/ops@{REALM}\n", ops.stderr
            assert ssh("ops", "alice").returncode == 255
        finally:
            proc.communicate(b"\n", timeout=30)
            stop(proc)
    finally:
        kdc.stop()
