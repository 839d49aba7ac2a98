"""A real MIT Kerberos KDC in a private realm, in a temporary directory, for one test module.

Nothing here touches the machine's Kerberos setup: the KDC, its database and
every client tool read the private ``krb5.conf``/``kdc.conf`` named by
``KRB5_CONFIG`` and ``KRB5_KDC_PROFILE``, and credentials caches live in the
directory too. The KDC listens on a free 127.0.0.1 port and is stopped by its
PID.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.support.processes import stop_process

REALM = "SPINDLEX.TEST"
# The name the OpenSSH client is given: it asks for a ticket to host/<name>.
HOST = "127.0.0.1"
_TOOLS = ("krb5kdc", "kdb5_util", "kadmin.local", "kinit", "klist", "kdestroy")
_PACKAGES = "apt-get install krb5-kdc krb5-admin-server krb5-user"


def missing_tools() -> str | None:
    """Why a KDC cannot be run here, or None."""
    path = f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"
    absent = [tool for tool in _TOOLS if shutil.which(tool, path=path) is None]
    if absent:
        return f"{', '.join(absent)} not installed: {_PACKAGES}"
    return None


def _free_port() -> int:
    # The KDC listens on the same number for UDP and TCP: find one free for both.
    for _ in range(50):
        with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port for the KDC")


class KDC:
    """A running KDC for :data:`REALM`, with helpers for principals, keytabs and tickets."""

    def __init__(self, tmp: Path) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        self.dir = tmp
        self.port = _free_port()
        self.krb5_conf = tmp / "krb5.conf"
        self.kdc_conf = tmp / "kdc.conf"
        self.log_path = tmp / "kdc.log"
        self.krb5_conf.write_text(
            "[libdefaults]\n"
            f" default_realm = {REALM}\n"
            " dns_lookup_kdc = false\n"
            " dns_lookup_realm = false\n"
            " dns_canonicalize_hostname = false\n"
            " rdns = false\n"
            " forwardable = true\n"
            " udp_preference_limit = 1\n"
            "[realms]\n"
            f" {REALM} = {{\n  kdc = 127.0.0.1:{self.port}\n }}\n"
            "[domain_realm]\n"
            f" {HOST} = {REALM}\n"
            f" localhost = {REALM}\n"
        )
        self.kdc_conf.write_text(
            "[kdcdefaults]\n"
            f" kdc_ports = {self.port}\n"
            f" kdc_tcp_ports = {self.port}\n"
            "[realms]\n"
            f" {REALM} = {{\n"
            f"  database_name = {tmp / 'principal'}\n"
            f"  key_stash_file = {tmp / 'stash'}\n"
            f"  acl_file = {tmp / 'kadm5.acl'}\n"
            f"  kdc_ports = {self.port}\n"
            f"  kdc_tcp_ports = {self.port}\n"
            " }\n"
            "[logging]\n"
            f" kdc = FILE:{self.log_path}\n"
        )
        self.env = {
            "KRB5_CONFIG": str(self.krb5_conf),
            "KRB5_KDC_PROFILE": str(self.kdc_conf),
            "KRB5CCNAME": f"FILE:{tmp / 'ccache-default'}",
            "KRB5RCACHEDIR": str(tmp),
            "PATH": f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin",
        }
        self._run("kdb5_util", "create", "-s", "-r", REALM, "-P", "master-password-for-tests")
        self.proc = subprocess.Popen(
            ["krb5kdc", "-n", "-r", REALM],
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._wait_listening()

    def environment(self, **extra: str) -> dict[str, str]:
        return {**os.environ, **self.env, **extra}

    def _run(self, *argv: str, input: str | None = None, **env: str) -> str:
        result = subprocess.run(
            list(argv), env=self.environment(**env), input=input, capture_output=True, text=True,
            timeout=30,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {result.stdout}{result.stderr}")
        return result.stdout

    def _wait_listening(self) -> None:
        # The KDC is ready once it accepts on its TCP port; bounded, and a dead KDC says why.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                stderr = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"krb5kdc exited: {stderr}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("krb5kdc did not start listening")

    def kadmin(self, query: str) -> str:
        return self._run("kadmin.local", "-r", REALM, "-q", query)

    def add_user(self, name: str, password: str) -> None:
        self.kadmin(f"addprinc -pw {password} {name}")

    def add_host(self, host: str, keytab: Path) -> str:
        """Creates host/<host> with a random key, written to ``keytab``; returns the principal."""
        principal = f"host/{host}@{REALM}"
        self.kadmin(f"addprinc -randkey {principal}")
        self.kadmin(f"ktadd -k {keytab} {principal}")
        return principal

    def kinit(self, principal: str, password: str, ccache: Path) -> None:
        """A forwardable ticket for ``principal`` in ``ccache``, obtained with its password."""
        self._run("kinit", "-f", principal, input=f"{password}\n", KRB5CCNAME=f"FILE:{ccache}")

    def client_env(self, ccache: Path) -> dict[str, str]:
        """The environment of a client using ``ccache`` in this realm."""
        return self.environment(KRB5CCNAME=f"FILE:{ccache}")

    def stop(self) -> None:
        stop_process(self.proc, timeout=10)
        if self.proc.stderr:
            self.proc.stderr.close()
