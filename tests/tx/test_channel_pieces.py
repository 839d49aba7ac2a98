"""The pieces of tx/channel/ on a stand-in connection: what each one sends, and when.

Real clients drive channels in tests/interop; these pin the ordering rules
that clients would only show as rare failures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.internet import protocol

from spindlex_tw.tx.channel import Channel


class Link:
    """A connection as a channel sees it (tx.channel.link.ChannelLink), recording calls."""

    username = "alice"
    reactor: Any = None
    transport: Any = None
    write_paused = False

    def __init__(self) -> None:
        self.sent: list[tuple[str, object]] = []
        self.consumed = 0

    def channel_send(self, channel_id: int, parts: Sequence[bytes], stream: int) -> None:
        self.sent.append(("data", b"".join(parts)))

    def channel_buffered(self, channel_id: int) -> int:
        return 0

    def channel_consumed(self, channel_id: int, count: int) -> None:
        self.consumed += count

    def channel_request_out(self, channel_id: int, name: str, data: bytes) -> None:
        self.sent.append(("request", name))

    def channel_eof_out(self, channel_id: int) -> None:
        self.sent.append(("eof", None))

    def channel_close_out(self, channel_id: int) -> None:
        self.sent.append(("close", None))


class Recorder(protocol.Protocol):
    def __init__(self) -> None:
        self.data: list[bytes] = []

    def dataReceived(self, data: bytes) -> None:
        self.data.append(data)


def test_a_channel_we_open_waits_for_the_peer_before_on_open() -> None:
    seen: list[Channel] = []
    ours = Channel(Link(), 1, "forwarded-tcpip", confirmed=False)
    ours.on_open(seen.append)
    assert seen == []
    ours.opened()
    assert seen == [ours]
    # The peer's own opens are confirmed by us at once, whatever their kind.
    theirs = Channel(Link(), 2, "forwarded-tcpip")
    theirs.on_open(seen.append)
    assert seen == [ours, theirs]


def test_output_held_for_a_reply_leaves_in_order_after_it() -> None:
    link = Link()
    channel = Channel(link, 0, "session")
    channel.hold_output()
    channel.write(b"out")
    channel.send_exit_status(0)
    channel.send_eof()
    channel.close()
    assert link.sent == []
    channel.release_output()
    assert link.sent == [
        ("data", b"out"),
        ("request", "exit-status"),
        ("eof", None),
        ("close", None),
    ]


def test_a_paused_protocol_gets_its_data_on_resume_and_only_then_frees_the_window() -> None:
    link = Link()
    channel = Channel(link, 0, "session")
    channel.data_received(b"read by nobody yet", 0)
    recorder = Recorder()
    channel.attach_protocol(recorder)
    assert recorder.data == [b"read by nobody yet"]
    channel.pauseProducing()
    channel.data_received(b"later", 0)
    assert (recorder.data[1:], link.consumed) == ([], len(b"read by nobody yet"))
    channel.resumeProducing()
    assert recorder.data[1:] == [b"later"]
    assert link.consumed == len(b"read by nobody yet") + len(b"later")


def test_session_facts_are_channel_attributes() -> None:
    channel = Channel(Link(), 0, "session")
    assert (channel.term, channel.term_size, channel.started) == (None, (80, 24, 0, 0), False)
    channel.term = "xterm"
    channel.environment["LANG"] = "C"
    assert (channel.facts.term, channel.facts.environment) == ("xterm", {"LANG": "C"})
