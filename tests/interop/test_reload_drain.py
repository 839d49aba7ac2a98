"""twistd spindlex run by an operator: SIGHUP reloads, SIGTERM drains, a second SIGTERM cuts.

Real OpenSSH clients (sftp, ssh) against ``twistd -n spindlex`` in a child
process. Transfers are slowed by the client's own bandwidth limit (``sftp
-l``), so a signal can come while one is surely running; every wait is on a
log line, a file on disk or a process's exit, never a sleep.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import asyncssh
import pytest

from spindlex_tw.twistd.credentials import hash_password
from tests.support.clients import asyncssh_connect, run_async
from tests.support.harness import OpenSSH
from tests.support.twistd import Twistd, isolated_home
from tests.support.waiting import poll

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("sshpass") is None, reason="sshpass not installed"),
]

LOCAL = ["--listen", "tcp:0:interface=127.0.0.1"]
SIZE = 8 * 1024 * 1024
# Kbit/s: 8 MiB take at least four seconds, so a signal sent once the first
# bytes have moved always finds the transfer running.
LIMIT = "16000"

RELOADED = re.compile(r"reloaded the configuration files")
REFUSED = re.compile(r"reload refused, keeping the previous configuration: (?P<why>.*)")
DRAINING = re.compile(r"draining (?P<count>\d+) connections for up to")
DRAINED = re.compile(r"drained: every connection has finished")
DRAIN_TIMEOUT = re.compile(r"drain timeout: closing")
STOP_NOW = re.compile(r"received SIGTERM again: stopping now")
SHUT_DOWN = re.compile(r"Server Shut Down")
# Logged once the handlers are in place: only then may a test send a signal.
SIGNALS = re.compile(r"SIGHUP reloads the configuration files")


def _keypair(tmp: Path, name: str) -> tuple[Path, str]:
    path = tmp / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True, timeout=30
    )
    return path, (tmp / f"{name}.pub").read_text()


def _replace(path: Path, text: str) -> None:
    """Write ``text`` as a new file renamed over ``path``, as editors and config tools do."""
    fresh = path.with_suffix(".new")
    fresh.write_text(text)
    fresh.replace(path)


def _sftp_batch(client: OpenSSH, password: str, batch: str, *extra: str) -> subprocess.Popen[bytes]:
    argv = client.password_argv("sftp", "alice", password)
    argv[-1:-1] = ["-b", "-", *extra]  # sftp takes its options before the destination
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdin is not None
    proc.stdin.write(batch.encode())
    proc.stdin.close()
    return proc


def _grows(path: Path) -> int | None:
    size = path.stat().st_size if path.exists() else 0
    return size if size > 0 else None


def _temporaries(directory: Path) -> list[str]:
    return [name for name in os.listdir(directory) if name.endswith(".part")]


def _uploading(
    tmp_path: Path, served: Path, *options: str
) -> tuple[Twistd, OpenSSH, subprocess.Popen[bytes], bytes]:
    """A server with ``options`` and a slow OpenSSH ``sftp put`` of SIZE bytes to it.

    Returns the server, its client, the running upload and what it uploads.
    """
    payload = os.urandom(SIZE)
    source = tmp_path / "upload.bin"
    source.write_bytes(payload)
    server = Twistd(
        ["spindlex", *LOCAL, "--auth", "memory:alice:secret", *options],
        cwd=served,
        env=isolated_home(tmp_path),
    )
    try:
        [port] = server.ports()
        server.wait_for(SIGNALS)
        client = OpenSSH(tmp_path, port)
        upload = _sftp_batch(client, "secret", f"put {source} upload.bin\n", "-l", LIMIT)
    except BaseException:
        server.kill()
        raise
    return server, client, upload, payload


@pytest.fixture
def served(tmp_path: Path) -> Path:
    directory = tmp_path / "served"
    directory.mkdir()
    return directory


def test_sighup_adds_a_user_and_a_key_while_a_download_runs(
    tmp_path: Path, served: Path
) -> None:
    payload = os.urandom(SIZE)
    (served / "big.bin").write_bytes(payload)
    passwords = tmp_path / "passwd"
    passwords.write_text(f"alice:{hash_password('first')}\n")
    first_key, first_line = _keypair(tmp_path, "first")
    second_key, second_line = _keypair(tmp_path, "second")
    keys = tmp_path / "authorized_keys"
    keys.write_text(first_line)
    server = Twistd(
        ["spindlex", *LOCAL, "--auth", f"file:{passwords}", "--authorized-keys", str(keys)],
        cwd=served,
        env=isolated_home(tmp_path),
    )
    try:
        [port] = server.ports()
        server.wait_for(SIGNALS)
        client = OpenSSH(tmp_path, port)
        fetched = tmp_path / "fetched.bin"
        download = _sftp_batch(client, "first", f"get big.bin {fetched}\n", "-l", LIMIT)
        poll(lambda: _grows(fetched), what="the download to start")

        _replace(passwords, f"alice:{hash_password('first')}\nbob:{hash_password('second')}\n")
        _replace(keys, first_line + second_line)
        server.proc.send_signal(signal.SIGHUP)
        server.wait_for(RELOADED)
        assert download.poll() is None, "the download ended before the reload"

        # The new user and the new key log in; the old ones still do.
        user = getpass.getuser()
        for login in (
            client.ssh("bob", "true", password="second"),
            client.ssh("alice", "true", password="first"),
            client.ssh(user, "true", identity=second_key),
            client.ssh(user, "true", identity=first_key),
        ):
            # Logged in: the server refuses exec (no --exec), it does not refuse the login.
            assert b"Permission denied" not in login.stderr, login.stderr

        assert download.wait(120) == 0, download.stderr.read() if download.stderr else b""
        assert fetched.read_bytes() == payload
        log = server.log()
        assert log.count("reloaded the configuration files") == 1
        assert re.search(r"login bob\b", log), log
        assert server.stop() == 0, server.log()
    finally:
        server.kill()


def test_bad_file_on_sighup_keeps_the_old_configuration(tmp_path: Path, served: Path) -> None:
    passwords = tmp_path / "passwd"
    passwords.write_text(f"alice:{hash_password('first')}\n")
    server = Twistd(
        ["spindlex", *LOCAL, "--auth", f"file:{passwords}"],
        cwd=served,
        env=isolated_home(tmp_path),
    )
    try:
        [port] = server.ports()
        server.wait_for(SIGNALS)
        client = OpenSSH(tmp_path, port)
        _replace(passwords, "alice:first\n")  # plain text: refused
        server.proc.send_signal(signal.SIGHUP)
        refused = server.wait_for(REFUSED)
        assert "plain text is refused" in refused["why"]
        assert str(passwords) in refused["why"]
        # The password read before still works; the plain-text one does not.
        kept = client.sftp("alice", "first", "pwd\n")
        assert kept.returncode == 0, kept.stderr
        wrong = client.sftp("alice", "alice", "pwd\n")
        assert wrong.returncode != 0
        log = server.log()
        assert log.count("plain text is refused") == 1, log  # one line, logins add none
        assert "reloaded the configuration files" not in log
        assert server.stop() == 0, server.log()
    finally:
        server.kill()


def test_sigterm_lets_a_running_upload_finish(tmp_path: Path, served: Path) -> None:
    server, client, upload, payload = _uploading(tmp_path, served, "--drain-timeout", "120")
    try:
        poll(lambda: _grows(served / "upload.bin"), what="the upload to start")
        server.proc.send_signal(signal.SIGTERM)
        assert server.wait_for(DRAINING)["count"] == "1"
        # Nothing new is accepted while the upload finishes.
        late = client.sftp("alice", "secret", "pwd\n")
        assert late.returncode != 0
        assert upload.wait(120) == 0, upload.stderr.read() if upload.stderr else b""
        server.wait_for(DRAINED)
        assert server.proc.wait(60) == 0, server.log()
        assert (served / "upload.bin").read_bytes() == payload
    finally:
        server.kill()


def test_sigterm_cuts_an_upload_at_the_drain_timeout_and_leaves_no_partial_file(
    tmp_path: Path, served: Path
) -> None:
    server, _, upload, _ = _uploading(
        tmp_path, served, "--atomic-uploads", "--drain-timeout", "0.5"
    )
    try:
        staged = poll(lambda: _temporaries(served) or None, what="the upload to start")
        poll(lambda: _grows(served / staged[0]), what="the upload to write")
        assert not (served / "upload.bin").exists()
        server.proc.send_signal(signal.SIGTERM)
        server.wait_for(DRAIN_TIMEOUT)
        assert upload.wait(60) != 0
        assert server.proc.wait(60) == 0, server.log()
        assert os.listdir(served) == []  # neither the real name nor the temporary
    finally:
        server.kill()


def test_second_sigterm_stops_at_once(tmp_path: Path, served: Path) -> None:
    server, _, upload, _ = _uploading(tmp_path, served, "--drain-timeout", "3600")
    try:
        poll(lambda: _grows(served / "upload.bin"), what="the upload to start")
        server.proc.send_signal(signal.SIGTERM)
        server.wait_for(DRAINING)
        server.proc.send_signal(signal.SIGTERM)
        server.wait_for(STOP_NOW)
        # Well inside the hour the drain would have waited.
        assert server.proc.wait(60) == 0, server.log()
        server.wait_for(SHUT_DOWN)
        assert upload.wait(60) != 0
    finally:
        server.kill()


def test_sighup_offers_a_replaced_host_key_to_new_connections(
    tmp_path: Path, served: Path
) -> None:
    host_key, old_public = _keypair(tmp_path, "host")
    _, new_public = _keypair(tmp_path, "host_next")
    server = Twistd(
        ["spindlex", *LOCAL, "--auth", "memory:alice:secret", "--host-key", str(host_key)],
        cwd=served,
        env=isolated_home(tmp_path),
    )
    try:
        [port] = server.ports()
        server.wait_for(SIGNALS)
        client = OpenSSH(tmp_path, port)

        def trusting(public: str) -> list[str]:
            known = tmp_path / ("known_old" if public == old_public else "known_new")
            known.write_text(f"[127.0.0.1]:{port} {' '.join(public.split()[:2])}\n")
            return ["StrictHostKeyChecking=yes", f"UserKnownHostsFile={known}"]

        def logs_in(public: str) -> bool:
            login = client.ssh("alice", "true", password="secret", extra=trusting(public))
            return b"Host key verification failed" not in login.stderr

        assert logs_in(old_public) and not logs_in(new_public)
        shutil.copyfile(tmp_path / "host_next", tmp_path / "host.new")
        (tmp_path / "host.new").replace(host_key)
        server.proc.send_signal(signal.SIGHUP)
        server.wait_for(RELOADED)
        server.wait_for(re.compile(r"host key added: ssh-ed25519"))
        server.wait_for(re.compile(r"host key removed: "))
        assert logs_in(new_public) and not logs_in(old_public)
        assert server.stop() == 0, server.log()
    finally:
        server.kill()


def test_sighup_reaches_every_worker(tmp_path: Path, served: Path) -> None:
    passwords = tmp_path / "passwd"
    passwords.write_text(f"alice:{hash_password('first')}\n")
    server = Twistd(
        ["spindlex", *LOCAL, "--auth", f"file:{passwords}", "--workers", "2"],
        cwd=served,
        env=isolated_home(tmp_path),
    )
    try:
        server.wait_for_all(SIGNALS, 2)  # the twistd process and its copy share the log
        server.proc.send_signal(signal.SIGHUP)
        assert len(server.wait_for_all(RELOADED, 2)) == 2
        assert server.stop() == 0, server.log()
    finally:
        server.kill()


def test_draining_refuses_new_channels_and_closes_a_connection_once_idle(
    tmp_path: Path, served: Path
) -> None:
    server = Twistd(
        ["spindlex", *LOCAL, "--auth", "memory:alice:secret", "--drain-timeout", "3600"],
        cwd=served,
        env=isolated_home(tmp_path),
    )

    async def scenario(port: int) -> None:
        async with asyncssh_connect(port) as conn:
            sftp = await conn.start_sftp_client()
            handle = await sftp.open("/held.bin", "wb")
            await handle.write(b"first part ")
            server.proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(server.wait_for, DRAINING)
            with pytest.raises(asyncssh.ChannelOpenError) as refused:
                await conn.start_sftp_client()
            assert refused.value.code == asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED
            await handle.write(b"and the rest")  # the running transfer carries on
            await handle.close()  # nothing open any more: the server lets the client go
            await asyncio.wait_for(conn.wait_closed(), 30)

    try:
        [port] = server.ports()
        server.wait_for(SIGNALS)
        run_async(scenario(port))
        server.wait_for(DRAINED)
        assert server.proc.wait(60) == 0, server.log()
        assert (served / "held.bin").read_bytes() == b"first part and the rest"
    finally:
        server.kill()


def test_openssh_learns_added_and_forgets_removed_host_keys(tmp_path: Path, served: Path) -> None:
    ed25519, ed25519_public = _keypair(tmp_path, "host")
    ecdsa = tmp_path / "host_ecdsa"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", str(ecdsa)], check=True, timeout=30
    )
    ecdsa_public = (tmp_path / "host_ecdsa.pub").read_text()
    stale = tmp_path / "stale"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", str(stale)], check=True, timeout=30
    )
    stale_public = (tmp_path / "stale.pub").read_text()
    server = Twistd(
        [
            "spindlex",
            *LOCAL,
            "--auth",
            "memory:alice:secret",
            "--host-key",
            str(ed25519),
            "--host-key",
            str(ecdsa),
        ],
        cwd=served,
        env=isolated_home(tmp_path),
    )
    try:
        [port] = server.ports()
        known = tmp_path / "known_hosts_rotating"

        def line(public: str) -> str:
            return f"[127.0.0.1]:{port} {' '.join(public.split()[:2])}"

        # The client knows the ed25519 key and an ECDSA key the server no longer has.
        known.write_text(line(ed25519_public) + "\n" + line(stale_public) + "\n")
        argv = [
            "sshpass", "-p", "secret", "sftp", "-F", "/dev/null",
            "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes", "-o", "UpdateHostKeys=yes",
            "-o", "HostKeyAlgorithms=ssh-ed25519,ecdsa-sha2-nistp256",
            "-o", "PubkeyAuthentication=no",
            "-P", str(port), "alice@127.0.0.1",
        ]  # fmt: skip
        session = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            assert session.stdin is not None and session.stdout is not None
            session.stdin.write(b"pwd\n")
            session.stdin.flush()
            assert session.stdout.readline().startswith(b"sftp> pwd")

            def updated() -> str | None:
                text = known.read_text()
                return text if line(ecdsa_public).split()[2] in text else None

            text = poll(updated, what="the client to learn the ECDSA host key")
            assert line(stale_public).split()[2] not in text  # the stale key is gone
            assert line(ed25519_public).split()[2] in text
        finally:
            session.kill()
            session.wait(10)
        assert server.stop() == 0, server.log()
    finally:
        server.kill()
