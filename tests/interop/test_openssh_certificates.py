"""OpenSSH certificates with twistd spindlex: user and host certificates, revocation, sk keys.

One server trusts a user CA (--trusted-user-ca-keys), a second CA through a
``cert-authority,principals="ops"`` authorized_keys line, refuses what a KRL
made by ``ssh-keygen -k`` revokes, and offers a host certificate. OpenSSH 9.2
(``ssh-keygen -s`` certificates) and AsyncSSH log in with certificates; each
refusal is the client's own ``Permission denied`` and the server's log says
why. What no client sends (a certificate signed by a certificate, security-key
signatures with chosen flags) goes through the raw test client.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import re
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from spindlex_tw.crypto.pkey import PKey
from spindlex_tw.crypto.sk_key import USER_PRESENT, USER_VERIFIED
from spindlex_tw.protocol import constants as c
from tests.support.certs import SoftwareAuthenticator, build_certificate, publickey_login
from tests.support.harness import OpenSSH
from tests.support.rawssh import RawClient
from tests.support.twistd import Twistd, isolated_home

pytestmark = pytest.mark.interop

USER = getpass.getuser()


def keygen(*args: str) -> None:
    subprocess.run(["ssh-keygen", "-q", *args], check=True, timeout=30, capture_output=True)


def new_key(path: Path, kind: str = "ed25519") -> Path:
    keygen("-N", "", "-t", kind, "-f", str(path))
    return path


@dataclass
class Setup:
    server: Twistd
    client: OpenSSH
    tmp: Path
    user_key: Path
    ca: Path
    ops_ca: Path
    host_ca: Path
    sk_plain: SoftwareAuthenticator
    sk_no_touch: SoftwareAuthenticator
    sk_verify: SoftwareAuthenticator

    def certificate(self, name: str, *options: str, ca: Path | None = None) -> Path:
        """``ssh-keygen -s`` a copy of the user key; returns the identity whose -cert.pub it is."""
        identity = self.tmp / f"id_{name}"
        identity.write_bytes(self.user_key.read_bytes())
        identity.chmod(0o600)
        identity.with_suffix(".pub").write_bytes(self.user_key.with_suffix(".pub").read_bytes())
        keygen("-s", str(ca or self.ca), "-I", f"{name}-id", *options, str(identity) + ".pub")
        return identity

    def ssh(self, identity: Path, *command: str, args: tuple[str, ...] = ()) -> Any:
        return self.client.ssh(
            USER,
            *command,
            identity=identity,
            extra=[f"CertificateFile={identity}-cert.pub", "LogLevel=INFO"],
            args=args,
        )


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("certs")
    ca = new_key(tmp / "user_ca")
    ops_ca = new_key(tmp / "ops_ca", "rsa")
    host_ca = new_key(tmp / "host_ca")
    host_key = new_key(tmp / "host_key")
    user_key = new_key(tmp / "user_key")
    keygen("-s", str(host_ca), "-h", "-I", "host", "-n", "127.0.0.1", str(host_key) + ".pub")
    revoked = new_key(tmp / "revoked_key")
    (tmp / "krl_spec").write_text("serial: 666\nid: revoked-by-id\n")
    keygen("-k", "-f", str(tmp / "krl"), "-s", str(ca) + ".pub", str(tmp / "krl_spec"))
    keygen("-k", "-u", "-f", str(tmp / "krl"), str(revoked) + ".pub")
    sk_plain, sk_no_touch = SoftwareAuthenticator(), SoftwareAuthenticator("ecdsa")
    sk_verify = SoftwareAuthenticator()
    # A certificate named as a CA: what it signs must still be refused.
    intermediate = PKey.generate("ed25519")
    intermediate.save_to_file(tmp / "intermediate")
    user_ca = PKey.from_private_key_file(ca)
    chain_ca = PKey.from_public_blob(build_certificate(intermediate, user_ca, ("chain",)))
    (tmp / "intermediate-cert.pub").write_text(chain_ca.get_public_line() + "\n")
    (tmp / "authorized_keys").write_text(
        f'cert-authority,principals="ops" {(tmp / "ops_ca.pub").read_text()}'
        f'cert-authority,principals="chain" {chain_ca.get_public_line()}\n'
        f"{sk_plain.public.get_public_line()}\n"
        f"no-touch-required {sk_no_touch.public.get_public_line()}\n"
        f"verify-required {sk_verify.public.get_public_line()}\n"
    )
    (tmp / "trusted").write_text((tmp / "user_ca.pub").read_text())
    server = Twistd(
        [
            "spindlex",
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--exec",
            "--host-key",
            str(host_key),
            "--host-certificate",
            str(host_key) + "-cert.pub",
            "--authorized-keys",
            str(tmp / "authorized_keys"),
            "--trusted-user-ca-keys",
            str(tmp / "trusted"),
            "--revoked-keys",
            str(tmp / "krl"),
        ],
        cwd=tmp,
        env=isolated_home(tmp),
    )
    try:
        [port] = server.ports()
        yield Setup(
            server, OpenSSH(tmp, port), tmp, user_key, ca, ops_ca, host_ca,
            sk_plain, sk_no_touch, sk_verify,
        )  # fmt: skip
    finally:
        server.kill()


def refused(setup: Setup, result: Any, reason: str) -> None:
    assert result.returncode == 255, result
    assert b"Permission denied" in result.stderr, result.stderr
    setup.server.wait_for(re.compile(reason))


def test_certificate_logs_in(setup: Setup) -> None:
    identity = setup.certificate("good", "-n", f"{USER},other", "-V", "+1h", "-z", "5")
    result = setup.ssh(identity, "echo", "in")
    assert (result.returncode, result.stdout) == (0, b"in\n"), result.stderr


def test_expired_certificate_is_refused(setup: Setup) -> None:
    identity = setup.certificate("expired", "-n", USER, "-V", "20200101:20200102")
    refused(setup, setup.ssh(identity, "true"), r"'expired-id'.*certificate has expired")


def test_wrong_principal_is_refused(setup: Setup) -> None:
    identity = setup.certificate("stranger", "-n", "somebody-else")
    refused(setup, setup.ssh(identity, "true"), r"'stranger-id'.*no principal")


def test_revoked_certificates_and_keys_are_refused(setup: Setup) -> None:
    by_serial = setup.certificate("serial666", "-n", USER, "-z", "666")
    refused(setup, setup.ssh(by_serial, "true"), r"is revoked")
    by_id = setup.certificate("revoked-by", "-n", USER)  # key id "revoked-by-id"
    assert setup.ssh(by_id, "true").returncode == 255
    revoked = setup.tmp / "revoked_key"
    keygen("-s", str(setup.ca), "-I", "revoked-key", "-n", USER, str(revoked) + ".pub")
    result = setup.ssh(revoked, "true")
    assert result.returncode == 255 and b"Permission denied" in result.stderr


def test_source_address_mismatch_is_refused(setup: Setup) -> None:
    identity = setup.certificate("sourced", "-n", USER, "-O", "source-address=127.0.0.1/32")
    refused(
        setup,
        setup.ssh(identity, "true", args=("-b", "127.0.0.2")),
        r"source-address does not admit 127\.0\.0\.2",
    )
    assert setup.ssh(identity, "echo", "ok").stdout == b"ok\n"


def test_unknown_critical_option_is_refused(setup: Setup) -> None:
    identity = setup.certificate("critical", "-n", USER, "-O", "critical:frobnicate=yes")
    refused(setup, setup.ssh(identity, "true"), r"unsupported critical option 'frobnicate'")


def test_force_command_runs_instead(setup: Setup) -> None:
    identity = setup.certificate("forced", "-n", USER, "-O", "force-command=echo forced")
    result = setup.ssh(identity, "rm", "-rf", "/nothing")
    assert (result.returncode, result.stdout) == (0, b"forced\n"), result.stderr


def test_missing_permit_pty_refuses_a_pty(setup: Setup) -> None:
    identity = setup.certificate("nopty", "-n", USER, "-O", "no-pty")
    result = setup.ssh(identity, "tty", args=("-tt",))
    assert b"PTY allocation request failed" in result.stderr
    allowed = setup.certificate("pty", "-n", USER)
    assert setup.ssh(allowed, "tty", args=("-tt",)).stdout.startswith(b"/dev/pts/")


def test_cert_authority_line_with_principals(setup: Setup) -> None:
    # An RSA CA: ssh-keygen signs with rsa-sha2-512.
    ops = setup.certificate("ops", "-n", "ops", ca=setup.ops_ca)
    result = setup.ssh(ops, "echo", "ops")
    assert (result.returncode, result.stdout) == (0, b"ops\n"), result.stderr
    # The line accepts the principal "ops" only, not the login name.
    named = setup.certificate("opsuser", "-n", USER, ca=setup.ops_ca)
    refused(setup, setup.ssh(named, "true"), r"'opsuser-id'.*no principal")


def test_sha1_ca_signature_is_refused(setup: Setup) -> None:
    sha1 = setup.certificate("sha1", "-n", "ops", "-t", "ssh-rsa", ca=setup.ops_ca)
    result = setup.ssh(sha1, "true")
    assert result.returncode == 255 and b"Permission denied" in result.stderr


def test_host_certificate_needs_no_prompt(setup: Setup) -> None:
    known = setup.tmp / "known_hosts_ca"
    known.write_text(f"@cert-authority * {(setup.tmp / 'host_ca.pub').read_text()}")
    identity = setup.certificate("hostcheck", "-n", USER)
    result = setup.client.ssh(
        USER,
        "echo",
        "trusted",
        identity=identity,
        extra=[
            f"CertificateFile={identity}-cert.pub",
            "StrictHostKeyChecking=yes",
            f"UserKnownHostsFile={known}",
            "LogLevel=DEBUG1",
        ],
    )
    assert (result.returncode, result.stdout) == (0, b"trusted\n"), result.stderr
    assert b"Server host certificate: ssh-ed25519-cert-v01@openssh.com" in result.stderr
    # The startup hint gives the plain key's fingerprint, for clients without the CA.
    setup.server.wait_for(re.compile(r"the server's host key is ssh-ed25519 SHA256:"))
    assert "host key is ssh-ed25519-cert" not in setup.server.log()


def test_asyncssh_client_with_certificates(setup: Setup) -> None:
    identity = setup.certificate("asyncssh", "-n", USER)

    async def run() -> str:
        key = asyncssh.read_private_key(str(identity))
        cert = asyncssh.read_certificate(f"{identity}-cert.pub")
        host_ca = asyncssh.read_public_key(str(setup.tmp / "host_ca.pub"))
        async with asyncssh.connect(
            "127.0.0.1",
            setup.client.port,
            username=USER,
            client_keys=[(key, cert)],
            known_hosts=([], [host_ca], []),
        ) as conn:
            done = await conn.run("echo asyncssh", check=True)
            return str(done.stdout)

    assert asyncio.run(asyncio.wait_for(run(), 60)) == "asyncssh\n"


def test_certificate_signed_by_a_certificate_is_refused(setup: Setup) -> None:
    """Even when an authorized_keys line names that certificate as its CA."""
    ca = PKey.from_private_key_file(setup.ca)
    intermediate = PKey.from_private_key_file(setup.tmp / "intermediate")
    line = (setup.tmp / "intermediate-cert.pub").read_text()
    intermediate_cert = PKey.from_public_line(line).get_public_key_bytes()
    user = PKey.generate("ed25519")
    chained = build_certificate(
        user.get_public_key(), intermediate, ("chain",), signature_key_blob=intermediate_cert
    )
    cert_name = "ssh-ed25519-cert-v01@openssh.com"
    answer = _raw_login(setup, cert_name, chained, user.sign_ssh)
    assert answer == c.SSH_MSG_USERAUTH_FAILURE
    # And the same user key certified by the trusted CA itself logs in.
    direct = build_certificate(user.get_public_key(), ca, (USER,))
    answer = _raw_login(setup, cert_name, direct, user.sign_ssh)
    assert answer == c.SSH_MSG_USERAUTH_SUCCESS


def _raw_login(setup: Setup, algorithm: str, blob: bytes, sign: Callable[[bytes], bytes]) -> int:
    """One signed publickey login of a fresh raw connection; the message type of the answer."""
    client = RawClient(setup.client.port)
    try:
        return publickey_login(client, USER, algorithm, blob, sign)
    finally:
        client.close()


def _sk_login(setup: Setup, device: SoftwareAuthenticator, flags: int) -> int:
    public = device.public
    return _raw_login(
        setup,
        public.get_name(),
        public.get_public_key_bytes(),
        lambda data: device.sign(data, flags),
    )


def test_security_keys_need_a_touch(setup: Setup) -> None:
    assert _sk_login(setup, setup.sk_plain, USER_PRESENT) == c.SSH_MSG_USERAUTH_SUCCESS
    assert _sk_login(setup, setup.sk_plain, 0) == c.SSH_MSG_USERAUTH_FAILURE
    setup.server.wait_for(re.compile(r"refused security key .*not touched"))


def test_no_touch_required_waives_the_touch(setup: Setup) -> None:
    assert _sk_login(setup, setup.sk_no_touch, 0) == c.SSH_MSG_USERAUTH_SUCCESS


def test_verify_required_needs_user_verification(setup: Setup) -> None:
    assert _sk_login(setup, setup.sk_verify, USER_PRESENT) == c.SSH_MSG_USERAUTH_FAILURE
    setup.server.wait_for(re.compile(r"refused security key .*did not verify the user"))
    both = USER_PRESENT | USER_VERIFIED
    assert _sk_login(setup, setup.sk_verify, both) == c.SSH_MSG_USERAUTH_SUCCESS


def test_extensions_limit_forwarding(setup: Setup) -> None:
    """A certificate without permit-port-forwarding / permit-agent-forwarding gets neither."""
    stdio = ("-W", f"127.0.0.1:{setup.client.port}")
    allowed = setup.certificate("forwarder", "-n", USER)
    assert setup.ssh(allowed, args=stdio).stdout.startswith(b"SSH-2.0-")
    closed = setup.certificate("noforward", "-n", USER, "-O", "no-port-forwarding")
    refused = setup.ssh(closed, args=stdio)
    assert refused.returncode == 255 and b"administratively prohibited" in refused.stderr
    sock = setup.tmp / "agent.sock"
    started = subprocess.run(
        ["ssh-agent", "-s", "-a", str(sock)], capture_output=True, text=True, timeout=30, check=True
    )
    pid = int(started.stdout.split("SSH_AGENT_PID=")[1].split(";")[0])
    try:
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(["ssh-add", "-q", str(setup.user_key)], env=env, check=True, timeout=30)
        no_agent = setup.certificate("noagent", "-n", USER, "-O", "no-agent-forwarding")
        for identity, status in ((allowed, 0), (no_agent, 2)):
            argv = [
                "ssh", *setup.client.options(), "-p", str(setup.client.port), "-A",
                "-i", str(identity), "-o", "IdentitiesOnly=yes",
                "-o", f"CertificateFile={identity}-cert.pub", f"{USER}@127.0.0.1", "ssh-add -l",
            ]  # fmt: skip
            listed = subprocess.run(
                argv, env=env, capture_output=True, timeout=60, stdin=subprocess.DEVNULL
            )
            assert listed.returncode == status, (identity.name, listed)
        setup.server.wait_for(re.compile(r"refused agent forwarding request"))
    finally:
        os.kill(pid, signal.SIGTERM)


PRINCIPALS_APP = """
from spindlex_tw.server.ssh_server import SSHServer


class PrincipalsApp(SSHServer):
    def get_authorized_principals(self, username):
        return ["deploy", "ops-" + username]
"""


def test_app_names_the_principals(setup: Setup, tmp_path: Path) -> None:
    """--app's get_authorized_principals, as sshd's AuthorizedPrincipalsFile."""
    (tmp_path / "principals_app.py").write_text(PRINCIPALS_APP)
    server = Twistd(
        [
            "spindlex", "--listen", "tcp:0:interface=127.0.0.1", "--exec",
            "--app", "principals_app:PrincipalsApp",
            "--trusted-user-ca-keys", str(setup.tmp / "trusted"),
        ],
        cwd=tmp_path,
        env=isolated_home(tmp_path),
    )  # fmt: skip
    try:
        [port] = server.ports()
        client = OpenSSH(tmp_path, port)
        for name, principal, status in (
            ("deploy", "deploy", 0),
            ("opsuser2", f"ops-{USER}", 0),
            ("plainname", USER, 255),  # the login name alone no longer does
        ):
            identity = setup.certificate(name, "-n", principal)
            result = client.ssh(
                USER, "true", identity=identity, extra=[f"CertificateFile={identity}-cert.pub"]
            )
            assert result.returncode == status, (name, result.stderr)
        server.wait_for(re.compile(r"'plainname-id'.*no principal"))
    finally:
        server.kill()
