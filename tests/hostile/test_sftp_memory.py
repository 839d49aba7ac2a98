"""SFTP requests whose work or answers outgrow the request: copy-data, and replies nobody reads.

Each test checks the refusal or the bound, then the server's health: memory
back within the bound docs/security.md states, and another client logging in.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import asyncssh
import pytest

from spindlex_tw.core import wire
from spindlex_tw.protocol import constants as c
from spindlex_tw.sftp.context import Limits
from spindlex_tw.sftp.session import OUTPUT_BATCH
from tests.support.harness import ServerProcess
from tests.support.rawssh import Closed, RawClient

MiB = 1024 * 1024
APP = "tests.hostile.sftp_apps:LimitedSFTPServer"
# What one connection's SFTP sessions may hold, as docs/security.md states it:
# the in-flight budget they share (requests and reply room), and for each
# session the channel's window of unread requests, a request being framed,
# the channel's output high-water mark with one batch of replies and one reply
# beyond it, and the one request a session may always have in flight.
CHANNEL_WINDOW = 2 * MiB
CHANNEL_HIGH_WATER = 1 * MiB
SHARED = Limits().max_outstanding_bytes
LARGEST_REPLY = 13 + Limits().max_read_length
PER_SESSION = (
    CHANNEL_WINDOW
    + Limits().max_packet_length
    + 32 * 1024
    + CHANNEL_HIGH_WATER
    + OUTPUT_BATCH
    + LARGEST_REPLY
    + Limits().max_packet_length
    + LARGEST_REPLY
)
ONE_SESSION = SHARED + PER_SESSION
# Interpreter and allocator overhead on top of the bytes the limits count.
SLACK = 24 * MiB


# --- measuring the server -----------------------------------------------------------------


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def settled_rss(pid: int, timeout: float = 120) -> tuple[int, int]:
    """``(settled, peak)``: poll RSS until it has not moved by 1 MiB over 20 samples."""
    samples: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        samples.append(rss(pid))
        recent = samples[-20:]
        if len(recent) == 20 and max(recent) - min(recent) < MiB:
            return samples[-1], max(samples)
        time.sleep(0.1)
    raise AssertionError(f"server RSS never settled: {[s // MiB for s in samples[-20:]]} MiB")


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def holds_open(pid: int, path: Path) -> bool:
    """Whether the server process has a descriptor on ``path``."""
    fds = Path(f"/proc/{pid}/fd")
    for fd in fds.iterdir():
        try:
            if os.readlink(fd) == str(path):
                return True
        except FileNotFoundError:
            continue  # closed while we looked
    return False


def another_client_logs_in(server: ServerProcess) -> None:
    client = RawClient(server.port, source="127.0.0.2")
    client.login()
    client.close()


# --- a raw client with several SFTP channels ------------------------------------------------


def sftp_packet(kind: int, request_id: int, body: bytes) -> bytes:
    payload = wire.byte(kind) + wire.uint32(request_id) + body
    return wire.uint32(len(payload)) + payload


def users_groups(request_id: int, ids: int) -> bytes:
    """users-groups-by-id@openssh.com asking ``ids`` names in all, every one of uid/gid 0."""
    blob = wire.uint32(0) * (ids // 2)
    return sftp_packet(
        200,
        request_id,
        wire.string("users-groups-by-id@openssh.com") + wire.string(blob) + wire.string(blob),
    )


class SftpChannels:
    """``count`` SFTP sessions on one connection; each grants the server ``window`` bytes, once."""

    def __init__(self, client: RawClient, count: int, window: int) -> None:
        self.client = client
        self.remote: list[int] = []
        self.send_window: list[int] = []
        self.max_packet: list[int] = []
        self.lock = threading.Lock()
        self.stalled = False
        for local in range(count):
            client.send(
                wire.byte(c.SSH_MSG_CHANNEL_OPEN)
                + wire.string("session")
                + wire.uint32(local)
                + wire.uint32(window)
                + wire.uint32(32768)
            )
            confirm = client.recv_skipping(c.SSH_MSG_GLOBAL_REQUEST)
            assert confirm[0] == c.SSH_MSG_CHANNEL_OPEN_CONFIRMATION, confirm[:1]
            reader = wire.Reader(confirm, 5)
            self.remote.append(reader.uint32())
            self.send_window.append(reader.uint32())
            self.max_packet.append(reader.uint32())
            client.send(
                wire.byte(c.SSH_MSG_CHANNEL_REQUEST)
                + wire.uint32(self.remote[local])
                + wire.string("subsystem")
                + wire.boolean(True)
                + wire.string("sftp")
            )
            assert self.reply_skipping_adjusts()[0] == c.SSH_MSG_CHANNEL_SUCCESS
            self.send(local, wire.uint32(5) + wire.byte(1) + wire.uint32(3))  # INIT
            assert self.sftp_reply(local)[0] == 2  # VERSION

    def reply_skipping_adjusts(self) -> bytes:
        while True:
            payload = self.client.recv_skipping(c.SSH_MSG_GLOBAL_REQUEST)
            if payload[0] != c.SSH_MSG_CHANNEL_WINDOW_ADJUST:
                return payload
            self.adjust(payload)

    def adjust(self, payload: bytes) -> None:
        reader = wire.Reader(payload, 1)
        local = reader.uint32()
        with self.lock:
            self.send_window[local] += reader.uint32()

    def sftp_reply(self, local: int) -> bytes:
        """The next SFTP reply on ``local`` (setup only: each fits one CHANNEL_DATA)."""
        payload = self.reply_skipping_adjusts()
        assert payload[0] == c.SSH_MSG_CHANNEL_DATA, payload[:1]
        reader = wire.Reader(payload, 1)
        assert reader.uint32() == local
        return reader.string()[4:]

    def send(self, local: int, data: bytes) -> int:
        """Send as much of ``data`` as the window allows; returns how much went."""
        with self.lock:
            room = min(len(data), self.send_window[local])
            self.send_window[local] -= room
        sent = 0
        messages = []
        while sent < room:
            piece = data[sent : sent + min(self.max_packet[local], room - sent)]
            messages.append(
                self.client.encoder.encode(
                    wire.byte(c.SSH_MSG_CHANNEL_DATA)
                    + wire.uint32(self.remote[local])
                    + wire.string(piece)
                )
            )
            sent += len(piece)
        self.client.send_raw(b"".join(messages))
        return room

    def flood(self, queues: list[bytes]) -> threading.Thread:
        """Keep sending each channel its queue as windows open; never read a reply.

        :attr:`stalled` becomes true once every channel has requests left and
        no window to send them in: every session has stopped reading.
        """

        def pump() -> None:
            try:
                while any(queues):
                    for local, data in enumerate(queues):
                        if data:
                            queues[local] = data[self.send(local, data) :]
                    with self.lock:
                        self.stalled = all(
                            data and not window
                            for data, window in zip(queues, self.send_window, strict=True)
                        )
                    payload = self.client.recv()
                    if payload[0] == c.SSH_MSG_CHANNEL_WINDOW_ADJUST:
                        self.adjust(payload)
            except (Closed, OSError):
                return  # the test closed the connection

        thread = threading.Thread(target=pump, daemon=True)
        thread.start()
        return thread


# "inline": every READ is answered while its request is read (Context.io), so
# nothing is under way and only the replies not yet taken hold the budget.
@pytest.mark.parametrize("disk_io", ["auto", "inline"])
def test_unread_replies_stay_within_the_session_bound(
    start_server: Callable[..., ServerProcess], tmp_path: Path, disk_io: str
) -> None:
    """20 SFTP channels that never read, flooding requests whose replies outgrow them."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "f").write_bytes(os.urandom(MiB))
    server = start_server(
        app=APP,
        env={"SPINDLEX_TEST_SFTP_ROOT": str(root), "SPINDLEX_TEST_DISK_IO": disk_io},
        settings={"max_requests_burst": 10**9},
    )
    client = RawClient(server.port)
    client.login()
    before = rss(server.proc.pid)
    channels = SftpChannels(client, count=20, window=64 * 1024)
    # 250 KiB of ids, once answered with over 1 MB each.
    ids = b"".join(users_groups(n, 64000) for n in range(2, 42))
    queues = []
    for local in range(20):
        channels.send(local, sftp_packet(3, 1, wire.string("/f") + wire.uint32(1) + wire.uint32(0)))
        reply = channels.sftp_reply(local)
        assert reply[0] == 102, reply  # HANDLE
        handle = wire.Reader(reply, 5).string()
        # Then READs, whose 256 KiB answers fill the session's budget.
        reads = b"".join(
            sftp_packet(5, n, wire.string(handle) + wire.uint64(0) + wire.uint32(256 * 1024))
            for n in range(400, 4400)
        )
        queues.append(ids + reads)
    pump = channels.flood(queues)
    wait_for(lambda: channels.stalled, "every session to stop reading", timeout=300)
    settled, peak = settled_rss(server.proc.pid)
    print(f"RSS before {before / MiB:.1f} MiB, peak {peak / MiB:.1f}, settled {settled / MiB:.1f}")
    assert peak - before <= SHARED + 20 * PER_SESSION + SLACK
    client.close()
    pump.join(30)
    wait_for(lambda: "logout alice" in server.log(), "the server to end the connection")
    after, _ = settled_rss(server.proc.pid)
    print(f"RSS after close {after / MiB:.1f} MiB")
    assert after - before <= ONE_SESSION + SLACK
    another_client_logs_in(server)


def test_too_many_ids_are_refused_and_names_still_come(
    start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    """No client sends 64,000 ids at once, so the raw client does; then a capped request."""
    server = start_server(app=APP, env={"SPINDLEX_TEST_SFTP_ROOT": str(tmp_path)})
    client = RawClient(server.port)
    client.login()
    channels = SftpChannels(client, count=1, window=4 * MiB)
    channels.send(0, users_groups(7, 64000))
    reply = channels.sftp_reply(0)
    reader = wire.Reader(reply, 1)
    assert (reply[0], reader.uint32(), reader.uint32()) == (101, 7, 4)  # STATUS FAILURE
    assert reader.text() == "too many ids in one request"
    channels.send(0, users_groups(8, Limits().max_ids_per_request))
    reply = channels.sftp_reply(0)
    assert reply[0] == 201, reply[:1]  # EXTENDED_REPLY
    reader = wire.Reader(reply, 5)
    users = wire.Reader(reader.string())
    assert users.string() == b"root"
    client.close()
    another_client_logs_in(server)


# --- copy-data ------------------------------------------------------------------------------


async def _asyncssh(port: int) -> asyncssh.SSHClientConnection:
    return await asyncssh.connect(
        "127.0.0.1",
        port,
        username="alice",
        password="secret",
        known_hosts=None,
        client_keys=None,
    )


def test_copy_of_a_sparse_file_writes_no_gigabytes(
    start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    """SETSTAT size makes a 1 TiB file; copy-data of it to its end takes neither disk nor time."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "small").write_bytes(b"x" * 1000)
    server = start_server(app=APP, env={"SPINDLEX_TEST_SFTP_ROOT": str(root)})
    before = rss(server.proc.pid)

    async def copy() -> None:
        async with await _asyncssh(server.port) as conn, conn.start_sftp_client() as sftp:
            await sftp.put(str(root / "small"), "huge")
            await sftp.truncate("huge", 1 << 40)  # SETSTAT size
            await sftp.remote_copy("huge", "copy")  # copy-data, length 0: to the end
            assert (await sftp.stat("copy")).size == 1 << 40

    asyncio.run(asyncio.wait_for(copy(), 120))
    copied = (root / "copy").stat()
    assert copied.st_size == 1 << 40
    assert copied.st_blocks * 512 < MiB  # the hole stayed a hole
    assert (root / "copy").open("rb").read(1000) == b"x" * 1000
    assert rss(server.proc.pid) - before <= ONE_SESSION + SLACK
    another_client_logs_in(server)


def test_copy_stops_when_the_client_goes(
    start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    """A long copy runs in steps the size of a WRITE, and its session's end stops it."""
    root = tmp_path / "root"
    root.mkdir()
    source = root / "big"
    source.write_bytes(os.urandom(64 * MiB))
    target = root / "copy"
    server = start_server(
        app=APP,
        env={"SPINDLEX_TEST_SFTP_ROOT": str(root), "SPINDLEX_TEST_SFTP_WRITE_LENGTH": "4096"},
    )

    async def start_and_leave() -> None:
        conn = await _asyncssh(server.port)
        sftp = await conn.start_sftp_client()
        copying = asyncio.ensure_future(sftp.remote_copy("big", "copy"))
        while not (target.exists() and target.stat().st_size > 0):
            await asyncio.sleep(0.01)  # polling for the copy's first step on disk
        assert not copying.done()
        conn.abort()  # gone mid-copy, without a word
        await asyncio.gather(copying, return_exceptions=True)

    asyncio.run(asyncio.wait_for(start_and_leave(), 120))
    # The server closes the target once the copy has stopped.
    wait_for(lambda: not holds_open(server.proc.pid, target), "the copy to stop")
    assert 0 < target.stat().st_size < source.stat().st_size
    another_client_logs_in(server)
