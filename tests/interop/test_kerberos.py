"""Kerberos logins (gssapi-with-mic) with OpenSSH against a real MIT KDC in a private realm.

One KDC for the module (tests/support/kdc.py): a host principal for the name
the client connects to (127.0.0.1) and one for ``localhost`` in the server's
keytab, user principals with passwords, tickets from ``kinit``. The server
is ``twistd spindlex --keytab``; the client is OpenSSH with
``GSSAPIAuthentication=yes`` and nothing else to try.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from spindlex_tw.core import wire
from spindlex_tw.core.gssapi_auth import KRB5_MECHANISM, encode_oid
from spindlex_tw.protocol import constants as c
from tests.support.harness import ROOT, OpenSSH
from tests.support.kdc import HOST, KDC, REALM, missing_tools
from tests.support.rawssh import RawClient
from tests.support.twistd import TWISTD, Twistd, isolated_home

pytestmark = pytest.mark.interop

if (reason := missing_tools()) is not None:
    pytest.skip(reason, allow_module_level=True)
pytest.importorskip(
    "gssapi", reason="gssapi not installed: pip install 'spindlex-tw[kerberos]' (libkrb5-dev)"
)

USERS = {"alice": "alice-secret", "dave": "dave-secret"}
GSSAPI_ONLY = ["GSSAPIAuthentication=yes", "PreferredAuthentications=gssapi-with-mic"]
LOGOUT = "logout {user} from "


class Realm:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.kdc = KDC(tmp / "kdc")
        self.keytab = tmp / "host.keytab"
        self.kdc.add_host(HOST, self.keytab)
        self.kdc.add_host("localhost", self.keytab)
        self.ccaches: dict[str, Path] = {}
        for user, password in USERS.items():
            self.kdc.add_user(user, password)
            self.ccaches[user] = tmp / f"{user}.ccache"
            self.kdc.kinit(user, password, self.ccaches[user])

    def server(self, *extra: str) -> tuple[Twistd, OpenSSH]:
        served = self.tmp / "served"
        served.mkdir(exist_ok=True)
        env = {**isolated_home(self.tmp), **self.kdc.env}
        server = Twistd(
            ["spindlex", "--listen", "tcp:0:interface=127.0.0.1", "--exec",
             "--keytab", str(self.keytab), *extra],
            cwd=served,
            env=env,
        )  # fmt: skip
        [port] = server.ports()
        return server, OpenSSH(self.tmp, port)

    def ssh(
        self, client: OpenSSH, user: str, ticket_of: str | None, *command: str,
        extra: tuple[str, ...] = (),
    ) -> subprocess.CompletedProcess[str]:  # fmt: skip
        ccache = self.ccaches[ticket_of] if ticket_of else self.tmp / "no-such.ccache"
        return subprocess.run(
            ["ssh", *client.options(extra=[*GSSAPI_ONLY, *extra]), "-p", str(client.port),
             f"{user}@{HOST}", *command],
            env=self.kdc.client_env(ccache),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip


@pytest.fixture(scope="module")
def realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Realm]:
    realm = Realm(tmp_path_factory.mktemp("krb5"))
    try:
        yield realm
    finally:
        realm.kdc.stop()


@pytest.fixture(scope="module")
def server(realm: Realm) -> Iterator[tuple[Twistd, OpenSSH]]:
    server, client = realm.server("--gssapi-principal-map", f"dave@{REALM}=shared")
    try:
        yield server, client
    finally:
        server.kill()


def test_a_ticket_logs_in_and_a_delegated_one_reaches_the_command(
    realm: Realm, server: tuple[Twistd, OpenSSH]
) -> None:
    twistd, client = server
    result = realm.ssh(client, "alice", "alice", "echo in as $USER; echo [$KRB5CCNAME]")
    assert result.returncode == 0, result.stderr + twistd.log()
    assert "[]" in result.stdout  # nothing delegated, no credentials cache
    twistd.wait_for(re.compile(r"login alice from \S+ by gssapi-with-mic"))

    show = 'cc=${KRB5CCNAME#FILE:}; klist; stat -c "%a %n" "$cc" "$(dirname "$cc")"'
    result = realm.ssh(
        client, "alice", "alice", show, extra=("GSSAPIDelegateCredentials=yes",)
    )
    assert result.returncode == 0, result.stderr + twistd.log()
    assert f"Default principal: alice@{REALM}" in result.stdout
    assert f"krbtgt/{REALM}@{REALM}" in result.stdout
    modes = re.findall(r"^(\d+) (/\S+)$", result.stdout, re.MULTILINE)
    assert [mode for mode, _ in modes] == ["600", "700"], result.stdout
    # The cache and its directory are gone once the connection is.
    twistd.wait_for_all(re.compile(re.escape(LOGOUT.format(user="alice"))), 2)
    assert not Path(modes[1][1]).exists()


def test_a_mapping_rule_names_the_login(realm: Realm, server: tuple[Twistd, OpenSSH]) -> None:
    twistd, client = server
    result = realm.ssh(client, "shared", "dave", "echo mapped")
    assert (result.returncode, result.stdout) == (0, "mapped\n"), result.stderr + twistd.log()


def test_a_principal_that_maps_to_another_user_is_refused(
    realm: Realm, server: tuple[Twistd, OpenSSH]
) -> None:
    twistd, client = server
    result = realm.ssh(client, "dave", "alice", "true")
    assert result.returncode == 255
    assert "Permission denied" in result.stderr
    twistd.wait_for(re.compile(rf"principal alice@{REALM} may not log in as dave"))
    twistd.wait_for(re.compile(r"denied gssapi-with-mic for dave"))
    # A rule replaces the default for its principal: dave is "shared", not "dave".
    assert realm.ssh(client, "dave", "dave", "true").returncode == 255


def test_no_ticket_is_refused(realm: Realm, server: tuple[Twistd, OpenSSH]) -> None:
    _, client = server
    result = realm.ssh(client, "alice", None, "true")
    assert result.returncode == 255
    # Offered, but without a ticket the client has nothing to send.
    assert re.search(r"Permission denied \(.*gssapi-with-mic.*\)", result.stderr), result.stderr


def test_a_ticket_for_another_host_principal_is_refused(realm: Realm) -> None:
    # host/localhost is in the keytab, but the client's ticket is for host/127.0.0.1.
    twistd, client = realm.server("--gssapi-host", "localhost")
    try:
        result = realm.ssh(client, "alice", "alice", "true")
        assert result.returncode == 255
        assert "Permission denied" in result.stderr
        twistd.wait_for(re.compile(r"gssapi-with-mic for alice from \S+: .+"))
        twistd.wait_for(re.compile(r"denied gssapi-with-mic for alice"))
    finally:
        twistd.kill()


def _one_line(tmp: Path, env: dict[str, str], *args: str) -> str:
    argv = [*TWISTD, "-n", "--pidfile=", "--logfile=-", "spindlex"]
    result = subprocess.run(
        [*argv, "--listen", "tcp:0:interface=127.0.0.1", *args],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    [line] = result.stderr.splitlines()
    return line


def test_cli_errors_are_one_line(realm: Realm, tmp_path: Path) -> None:
    env = {**realm.kdc.environment(), **isolated_home(tmp_path), "PYTHONPATH": str(ROOT)}
    line = _one_line(tmp_path, env, "--keytab", str(tmp_path / "missing.keytab"))
    assert "--keytab: keytab " in line and "cannot be read" in line
    line = _one_line(tmp_path, env, "--gssapi-host", "localhost")
    assert line.endswith("--gssapi-host needs --keytab")
    line = _one_line(tmp_path, env, "--keytab", str(realm.keytab), "--gssapi-host", "nowhere")
    assert "--keytab: keytab" in line
    # Without the kerberos extra: a gssapi package that cannot be imported comes first.
    fake = tmp_path / "no-gssapi"
    (fake / "gssapi").mkdir(parents=True)
    (fake / "gssapi" / "__init__.py").write_text("raise ImportError('not built')\n")
    line = _one_line(
        tmp_path, {**env, "PYTHONPATH": f"{fake}:{ROOT}"}, "--keytab", str(realm.keytab)
    )
    assert "the gssapi package is not installed: pip install 'spindlex-tw[kerberos]'" in line


def _gssapi_request(*oids: bytes) -> bytes:
    return (
        wire.byte(c.SSH_MSG_USERAUTH_REQUEST)
        + wire.string("alice")
        + wire.string("ssh-connection")
        + wire.string("gssapi-with-mic")
        + wire.uint32(len(oids))
        + b"".join(wire.string(oid) for oid in oids)
    )


def test_bad_tokens_and_a_wrong_mic_are_refused_and_counted(
    realm: Realm, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gssapi

    # This process is the client: its GSS-API library reads the realm's files.
    for name, value in realm.kdc.client_env(realm.ccaches["alice"]).items():
        monkeypatch.setenv(name, value)
    twistd, client = realm.server("--max-auth-tries", "3")
    raw = RawClient(client.port)
    krb5 = encode_oid(KRB5_MECHANISM)
    try:
        raw.handshake()
        raw.request_service()
        # 1: a mechanism other than Kerberos (SPNEGO) is not offered.
        raw.send(_gssapi_request(encode_oid("1.3.6.1.5.5.2")))
        assert raw.recv_skipping(c.SSH_MSG_EXT_INFO)[0] == c.SSH_MSG_USERAUTH_FAILURE
        # 2: a token that is no Kerberos token.
        raw.send(_gssapi_request(krb5))
        assert raw.recv() == wire.byte(c.SSH_MSG_USERAUTH_GSSAPI_RESPONSE) + wire.string(krb5)
        raw.send(wire.byte(c.SSH_MSG_USERAUTH_GSSAPI_TOKEN) + wire.string(b"\x60garbage"))
        answer = raw.recv_skipping(c.SSH_MSG_USERAUTH_GSSAPI_ERRTOK)
        assert answer[0] == c.SSH_MSG_USERAUTH_GSSAPI_ERROR
        assert raw.recv()[0] == c.SSH_MSG_USERAUTH_FAILURE
        # 3: a real ticket, and a MIC over the wrong bytes: the limit is reached.
        raw.send(_gssapi_request(krb5))
        assert raw.recv()[0] == c.SSH_MSG_USERAUTH_GSSAPI_RESPONSE
        context = gssapi.SecurityContext(
            name=gssapi.Name(f"host@{HOST}", gssapi.NameType.hostbased_service),
            usage="initiate",
            mech=gssapi.MechType.kerberos,
        )
        raw.send(wire.byte(c.SSH_MSG_USERAUTH_GSSAPI_TOKEN) + wire.string(context.step()))
        reply = raw.recv()
        assert reply[0] == c.SSH_MSG_USERAUTH_GSSAPI_TOKEN
        context.step(wire.Reader(reply, 1).string())
        assert context.complete
        mic = context.get_signature(wire.string(b"not the session id"))
        raw.send(wire.byte(c.SSH_MSG_USERAUTH_GSSAPI_MIC) + wire.string(mic))
        disconnect = raw.expect_disconnect()
        assert disconnect.reason == c.SSH_DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE
        twistd.wait_for(re.compile(r"gssapi-with-mic for alice from \S+: the MIC does not verify"))
        # Other clients carry on, and nothing went wrong inside.
        result = realm.ssh(client, "alice", "alice", "echo still fine")
        assert result.stdout == "still fine\n", result.stderr
        assert "Traceback" not in twistd.log()
    finally:
        raw.close()
        twistd.kill()
