"""Limits and known attack classes: each checks the server's answer and its health after."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from spindlex_tw.core import wire
from spindlex_tw.protocol import constants as c
from tests.support.harness import ServerProcess
from tests.support.processes import status_kib
from tests.support.rawssh import RawClient

GOOD_SOURCE = "127.0.0.2"  # a well-behaved client from another address


def good_login(server: ServerProcess) -> None:
    """A well-behaved client from another address logs in (each step bounded by its timeout)."""
    client = RawClient(server.port, source=GOOD_SOURCE)
    client.login()
    client.close()


def stalled(server: ServerProcess, count: int, source: str = "127.0.0.1") -> list[RawClient]:
    """Connections that sent their identification and then nothing."""
    clients = []
    for _ in range(count):
        client = RawClient(server.port, source=source)
        client.exchange_versions()
        clients.append(client)
    return clients


def test_total_connection_cap(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(settings={"max_connections": 3, "max_startups": [50, 100, 100]})
    held = stalled(server, 3)
    refused = RawClient(server.port, source=GOOD_SOURCE)
    refused.exchange_versions()
    disconnect = refused.expect_disconnect()
    assert disconnect.reason == c.SSH_DISCONNECT_TOO_MANY_CONNECTIONS
    assert disconnect.description == "Too many connections"
    for client in held:
        client.close_and_wait()  # the server closed them: their slots are free
    good_login(server)


def test_one_source_cannot_hold_every_slot(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(settings={"max_startups_per_source": 4})
    held = stalled(server, 4)
    refused = RawClient(server.port)
    refused.exchange_versions()
    assert "from this address" in refused.expect_disconnect().description
    good_login(server)
    del held


def test_maxstartups_drops_unauthenticated(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(settings={"max_startups": [2, 100, 50]})
    held = stalled(server, 2, source="127.0.0.3")
    refused = RawClient(server.port, source="127.0.0.4")
    refused.exchange_versions()
    assert refused.expect_disconnect().description == "Too many unauthenticated connections"
    del held


def test_login_grace_ends_stalled_key_exchange(start_server: Callable[..., ServerProcess]) -> None:
    """A never-finished key exchange does not hold the connection (Go CVE-2025-22869 class)."""
    server = start_server(settings={"login_grace": 1.0})
    client = RawClient(server.port)
    client.exchange_versions()
    assert client.recv()[0] == c.SSH_MSG_KEXINIT
    disconnect = client.expect_disconnect()
    assert disconnect.description == "Login grace time exceeded"
    assert client.closed_by_server()


def test_preauth_ignore_flood(server: ServerProcess) -> None:
    """IGNORE floods before login (CVE-2025-26466 class) cost neither memory nor others' logins."""
    attacker = RawClient(server.port)
    attacker.handshake()
    before = status_kib(server.proc.pid)
    stop = threading.Event()
    sent: list[int] = []

    def flood() -> None:
        try:
            for count in range(3000):  # ~90 MB, bounded
                if stop.is_set():
                    break
                attacker.send(wire.byte(c.SSH_MSG_IGNORE) + wire.string(b"\0" * 30000))
                sent.append(count)
        except OSError:
            pass

    flooder = threading.Thread(target=flood, daemon=True)
    flooder.start()
    while len(sent) < 200 and flooder.is_alive():
        time.sleep(0.01)
    good_login(server)  # while the flood is still being sent
    stop.set()
    flooder.join(60)
    assert len(sent) >= 200
    assert status_kib(server.proc.pid) - before < 16 * 1024
    assert server.alive()
    assert "Corrupted MAC" not in server.log()  # the flood itself was well-formed


def test_request_rate_limit(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(settings={"max_requests_per_second": 10, "max_requests_burst": 50})
    client = RawClient(server.port)
    client.login()
    keepalive = (
        wire.byte(c.SSH_MSG_GLOBAL_REQUEST)
        + wire.string("keepalive@openssh.com")
        + wire.boolean(True)
    )
    # One write, so the server has read all of it before it hangs up (no reset, no
    # broken pipe on our side): ten more requests than the burst allows.
    client.send_raw(b"".join(client.encoder.encode(keepalive) for _ in range(60)))
    while True:
        message = client.recv()
        if message[0] == c.SSH_MSG_DISCONNECT:
            assert wire.Reader(message, 5).text() == "Too many requests"
            break
        assert message[0] == c.SSH_MSG_REQUEST_FAILURE  # keepalives answered until then
    good_login(server)


def test_peer_that_never_reads_is_not_buffered_forever(
    start_server: Callable[..., ServerProcess],
) -> None:
    """keepalive requests from a peer that reads nothing: the server stops reading too."""
    # No rate limit here: the point is what happens when the answers pile up.
    server = start_server(settings={"max_requests_burst": 10**9})
    client = RawClient(server.port)
    client.login()
    # A small receive buffer that stops growing: the kernel absorbs fewer answers
    # (the server sends each as soon as it is made), so the stall comes sooner.
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    client.sock.settimeout(2.0)  # a send that cannot finish in 2 s means: not read any more
    before = status_kib(server.proc.pid)
    stalled = False
    for _ in range(400_000):
        packet = client.encoder.encode(
            wire.byte(c.SSH_MSG_GLOBAL_REQUEST)
            + wire.string("keepalive@openssh.com")
            + wire.boolean(True)
        )
        try:
            client.sock.sendall(packet)
        except TimeoutError:
            stalled = True
            break
    assert stalled, "the server kept reading while its answers piled up"
    assert status_kib(server.proc.pid) - before < 32 * 1024
    good_login(server)
    client.close()


def test_decompression_bomb(server: ServerProcess) -> None:
    client = RawClient(server.port)
    client.login(compression="zlib@openssh.com")
    client.send(wire.byte(c.SSH_MSG_IGNORE) + wire.string(b"\0" * (4 << 20)))
    assert client.expect_disconnect().reason == c.SSH_DISCONNECT_COMPRESSION_ERROR
    good_login(server)


def test_window_overflow_is_capped(server: ServerProcess) -> None:
    from tests.hostile.test_connection_input import channel_request, open_session

    client = RawClient(server.port)
    client.login()
    confirm = open_session(client)
    channel = wire.Reader(confirm, 5).uint32()
    for _ in range(3):
        client.send(
            wire.byte(c.SSH_MSG_CHANNEL_WINDOW_ADJUST)
            + wire.uint32(channel)
            + wire.uint32(0xFFFFFFFF)
        )
    assert channel_request(client, channel, "exec", wire.string("echo still fine"))[0] == (
        c.SSH_MSG_CHANNEL_SUCCESS
    )
    data = client.recv_skipping(c.SSH_MSG_CHANNEL_WINDOW_ADJUST)
    assert data[0] == c.SSH_MSG_CHANNEL_DATA
    assert wire.Reader(data, 5).string() == b"still fine\n"


@pytest.mark.parametrize(
    "message",
    [
        wire.byte(c.SSH_MSG_CHANNEL_DATA) + wire.uint32(0) + wire.uint32(0xFFFFFFFF) + b"x",
        wire.byte(c.SSH_MSG_CHANNEL_OPEN)
        + wire.string("session")
        + wire.uint32(0xFFFFFFFF)
        + wire.uint32(0xFFFFFFFF),  # truncated: no max packet field
        wire.byte(c.SSH_MSG_GLOBAL_REQUEST) + wire.uint32(0xFFFFFFFF),
    ],
)
def test_length_fields_at_their_limits(server: ServerProcess, message: bytes) -> None:
    client = RawClient(server.port)
    client.login()
    client.send(message)
    assert client.expect_disconnect().reason == c.SSH_DISCONNECT_PROTOCOL_ERROR
    good_login(server)


def test_pipelined_auth_requests_are_bounded(server: ServerProcess) -> None:
    client = RawClient(server.port)
    client.handshake()
    client.request_service()
    request = (
        wire.byte(c.SSH_MSG_USERAUTH_REQUEST)
        + wire.string("slow")
        + wire.string("ssh-connection")
        + wire.string("password")
        + wire.boolean(False)
        + wire.string("x")
    )
    # In one write, so the hang-up cannot race our sends.
    client.send_raw(b"".join(client.encoder.encode(request) for _ in range(20)))
    disconnect = client.expect_disconnect()
    assert "too many authentication requests" in disconnect.description
    good_login(server)


def test_random_bytes_after_keys(server: ServerProcess) -> None:
    client = RawClient(server.port)
    client.handshake()
    client.send_raw(os.urandom(4096))
    assert client.expect_disconnect().reason in (
        c.SSH_DISCONNECT_PROTOCOL_ERROR,
        c.SSH_DISCONNECT_MAC_ERROR,
    )
    good_login(server)


def _sftp_packet(kind: int, request_id: int, body: bytes) -> bytes:
    payload = wire.byte(kind) + wire.uint32(request_id) + body
    return wire.uint32(len(payload)) + payload


def _channel_data(channel: int, data: bytes) -> bytes:
    return wire.byte(c.SSH_MSG_CHANNEL_DATA) + wire.uint32(channel) + wire.string(data)


def _sftp_reply(client: RawClient) -> bytes:
    """The first SFTP reply in the server's CHANNEL_DATA (each reply fits one packet here)."""
    payload = client.recv_skipping(c.SSH_MSG_CHANNEL_WINDOW_ADJUST, c.SSH_MSG_GLOBAL_REQUEST)
    assert payload[0] == c.SSH_MSG_CHANNEL_DATA, payload[:1]
    data = wire.Reader(payload, 5).string()
    return data[4:]


@pytest.mark.parametrize("disk_io", ["inline", "threads"])
def test_sftp_reads_nobody_takes_are_not_buffered(
    start_server: Callable[..., ServerProcess], tmp_path: Path, disk_io: str
) -> None:
    """Thousands of 256 KiB READs and a client that reads none of the answers."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "f").write_bytes(os.urandom(1 << 20))
    server = start_server(
        env={"SPINDLEX_TEST_SFTP_ROOT": str(root), "SPINDLEX_TEST_DISK_IO": disk_io},
        settings={"max_requests_burst": 10**9},
    )
    client = RawClient(server.port)
    client.login()
    client.send(
        wire.byte(c.SSH_MSG_CHANNEL_OPEN)
        + wire.string("session")
        + wire.uint32(0)
        + wire.uint32(256 * 1024)  # our window: the server may send us this much
        + wire.uint32(32768)
    )
    confirm = client.recv_skipping(c.SSH_MSG_GLOBAL_REQUEST)
    assert confirm[0] == c.SSH_MSG_CHANNEL_OPEN_CONFIRMATION
    channel = wire.Reader(confirm, 5).uint32()
    client.send(
        wire.byte(c.SSH_MSG_CHANNEL_REQUEST)
        + wire.uint32(channel)
        + wire.string("subsystem")
        + wire.boolean(True)
        + wire.string("sftp")
    )
    assert client.recv_skipping(c.SSH_MSG_CHANNEL_WINDOW_ADJUST)[0] == c.SSH_MSG_CHANNEL_SUCCESS
    client.send(_channel_data(channel, wire.uint32(5) + wire.byte(1) + wire.uint32(3)))  # INIT
    assert _sftp_reply(client)[0] == 2  # VERSION
    open_file = wire.string("/f") + wire.uint32(1) + wire.uint32(0)  # READ, no attributes
    client.send(_channel_data(channel, _sftp_packet(3, 1, open_file)))
    reply = _sftp_reply(client)
    assert reply[0] == 102, reply  # HANDLE
    handle = wire.Reader(reply, 5).string()
    before = status_kib(server.proc.pid)
    reads = b"".join(
        _sftp_packet(5, n, wire.string(handle) + wire.uint64(0) + wire.uint32(256 * 1024))
        for n in range(2, 4002)
    )
    # 4,000 answers of 256 KiB would be 1 GiB; they must wait for a reader instead.
    client.send_raw(
        b"".join(
            client.encoder.encode(_channel_data(channel, reads[i : i + 32768]))
            for i in range(0, len(reads), 32768)
        )
    )
    # A keepalive after the flood: the transport answers it only once it has
    # read every READ before it, so the reply is the server's own word that the
    # whole flood is in (answers it could not send are skipped here).
    client.send(
        wire.byte(c.SSH_MSG_GLOBAL_REQUEST)
        + wire.string("keepalive@openssh.com")
        + wire.boolean(True)
    )
    answer = client.recv_skipping(c.SSH_MSG_CHANNEL_DATA, c.SSH_MSG_CHANNEL_WINDOW_ADJUST)
    assert answer[0] == c.SSH_MSG_REQUEST_FAILURE, answer[:1]
    assert status_kib(server.proc.pid) - before < 48 * 1024
    good_login(server)
    client.close()
