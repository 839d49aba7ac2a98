"""The SFTP sessions of one connection share one in-flight budget, and none starves.

Eight SFTP channels of one connection flood READs and never read a reply, so
the budget they share is spent and held by replies nobody takes; a ninth
channel of the same connection, which reads its replies, is still answered,
request after request (a session may always have one request in flight).
No real client can leave some channels unread while using another, so the
raw attacker client of tests/hostile does it.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spindlex_tw.core import wire
from spindlex_tw.protocol import constants as c
from tests.hostile.test_sftp_memory import (
    APP,
    SftpChannels,
    another_client_logs_in,
    sftp_packet,
    wait_for,
)
from tests.support.harness import ServerProcess
from tests.support.rawssh import RawClient

FLOODING = 8
# Small READs fill the budget to within one of them (about 37 KiB with the
# channel packet each one holds); the reading session asks for more than that,
# so only the one request a session may always have lets it in.
FLOOD_READ = 4096
READ = 60000


class Tapped:
    """The raw client, with the CHANNEL_DATA of one channel set aside for the test.

    The flood's pump thread reads everything the server sends; the replies of
    ``local`` go to :attr:`replies` instead of being dropped.
    """

    def __init__(self, client: RawClient, local: int) -> None:
        self.client = client
        self.local = local
        self.replies: queue.Queue[bytes] = queue.Queue()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def recv(self) -> bytes:
        while True:
            payload = self.client.recv()
            if payload[0] == c.SSH_MSG_CHANNEL_DATA:
                reader = wire.Reader(payload, 1)
                if reader.uint32() == self.local:
                    self.replies.put(reader.string())
                    continue
            return payload


class Serialized(SftpChannels):
    """SftpChannels whose sends may come from the test thread and the pump thread:
    each message must be encoded and written in one go, or sequence numbers cross."""

    def __init__(self, client: Any, count: int, window: int) -> None:
        self.sending = threading.Lock()
        super().__init__(client, count, window)

    def send(self, local: int, data: bytes) -> int:
        with self.sending:
            return super().send(local, data)


def _reply(tapped: Tapped, channels: Serialized) -> bytes:
    """The next SFTP reply on the tapped channel, granting the window it used back."""
    data = b""
    while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:4], "big"):
        data += tapped.replies.get(timeout=60)
    with channels.sending:
        tapped.client.send(
            wire.byte(c.SSH_MSG_CHANNEL_WINDOW_ADJUST)
            + wire.uint32(channels.remote[tapped.local])
            + wire.uint32(len(data))
        )
    return data[4:]


def _handle(channels: SftpChannels, local: int) -> bytes:
    channels.send(local, sftp_packet(3, 1, wire.string("/f") + wire.uint32(1) + wire.uint32(0)))
    reply = channels.sftp_reply(local)
    assert reply[0] == 102, reply  # HANDLE
    return wire.Reader(reply, 5).string()


def test_a_session_that_reads_is_served_while_the_others_hold_the_budget(
    start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "f").write_bytes(os.urandom(READ))
    server = start_server(
        app=APP,
        env={"SPINDLEX_TEST_SFTP_ROOT": str(root)},
        settings={"max_requests_burst": 10**9},
    )
    client = RawClient(server.port)
    client.login()
    tapped = Tapped(client, FLOODING)
    channels = Serialized(tapped, count=FLOODING + 1, window=64 * 1024)
    queues = []
    for local in range(FLOODING):
        handle = _handle(channels, local)
        queues.append(
            b"".join(
                sftp_packet(5, n, wire.string(handle) + wire.uint64(0) + wire.uint32(FLOOD_READ))
                # More than the channel's window: the session surely stops reading.
                for n in range(10, 10 + 3 * 65536)
            )
        )
    handle = _handle(channels, FLOODING)
    queues.append(b"")
    pump = channels.flood(queues)
    wait_for(
        lambda: all(
            data and not window
            for data, window in zip(queues[:FLOODING], channels.send_window, strict=False)
        ),
        "every flooding session to stop reading",
        timeout=120,
    )

    # The ninth session asks, reads each answer, and asks again.
    for n in range(5):
        channels.send(
            FLOODING,
            sftp_packet(5, 100 + n, wire.string(handle) + wire.uint64(0) + wire.uint32(READ)),
        )
        reply = _reply(tapped, channels)
        reader = wire.Reader(reply, 1)
        assert (reply[0], reader.uint32()) == (103, 100 + n), reply[:9]  # DATA, in turn
        assert len(reader.string()) == READ
    client.close()
    pump.join(30)
    another_client_logs_in(server)
