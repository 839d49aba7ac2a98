"""The sans-IO transport, driven in memory: no sockets, no reactor."""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spindlex_tw.core import events as ev
from spindlex_tw.core import wire
from spindlex_tw.core.connection import ChannelLimits, ConnectionService
from spindlex_tw.core.errors import ProtocolError
from spindlex_tw.core.kexinit import KexInit, negotiate
from spindlex_tw.core.packet import PacketDecoder, PacketEncoder
from spindlex_tw.core.transport import ServerTransport, TransportConfig
from spindlex_tw.core.version import VersionExchange, VersionLimits
from spindlex_tw.crypto.pkey import Ed25519Key
from spindlex_tw.protocol import constants as c

HOST_KEY = Ed25519Key.generate()


def seeded_rng(seed: int = 1) -> object:
    generator = random.Random(seed)
    return lambda n: bytes(generator.getrandbits(8) for _ in range(n))


def new_transport(**config: object) -> ServerTransport:
    return ServerTransport(TransportConfig(**config), [HOST_KEY], seeded_rng())  # type: ignore[arg-type]


def client_kexinit(**overrides: list[str]) -> KexInit:
    lists = {
        "kex": ["curve25519-sha256", "kex-strict-c-v00@openssh.com"],
        "host_key": ["ssh-ed25519"],
        "cipher_c2s": ["aes128-ctr"],
        "cipher_s2c": ["aes128-ctr"],
        "mac_c2s": ["hmac-sha2-256"],
        "mac_s2c": ["hmac-sha2-256"],
        "compression_c2s": ["none"],
        "compression_s2c": ["none"],
    }
    lists.update(overrides)
    return KexInit(cookie=b"\x00" * 16, **lists)  # type: ignore[arg-type]


def test_server_speaks_first_and_sends_kexinit() -> None:
    transport = new_transport()
    out = transport.data_to_send()
    assert out.startswith(b"SSH-2.0-spindlex_tw_0.1\r\n")
    decoder = PacketDecoder(35000, 35000)
    decoder.feed(out.split(b"\r\n", 1)[1])
    kexinit = KexInit.decode(decoder.next_payload() or b"")
    assert kexinit.kex[0] == "mlkem768x25519-sha256"
    assert "kex-strict-s-v00@openssh.com" in kexinit.kex
    assert kexinit.host_key == ["ssh-ed25519"]


def test_version_exchange_limits() -> None:
    exchange = VersionExchange(VersionLimits())
    assert exchange.feed(b"some banner\r\n") is None
    rest = exchange.feed(b"SSH-2.0-client comment\r\nleftover")
    assert rest == b"leftover"
    assert exchange.peer_version == b"SSH-2.0-client comment"


def test_negotiation_names_the_category() -> None:
    server = KexInit(
        b"\x00" * 16,
        ["curve25519-sha256"],
        ["ssh-ed25519"],
        ["aes128-ctr"],
        ["aes128-ctr"],
        ["hmac-sha2-256"],
        ["hmac-sha2-256"],
        ["none"],
        ["none"],
    )
    client = client_kexinit(mac_s2c=["hmac-md5"])
    with pytest.raises(ProtocolError) as failure:
        negotiate(client, server, frozenset())
    assert "no matching MAC (server to client) found" in failure.value.description
    assert failure.value.reason == c.SSH_DISCONNECT_KEY_EXCHANGE_FAILED


def test_aead_makes_mac_implicit() -> None:
    server = client_kexinit(
        cipher_c2s=["aes128-gcm@openssh.com"], cipher_s2c=["aes128-gcm@openssh.com"]
    )
    chosen = negotiate(server, server, frozenset({"aes128-gcm@openssh.com"}))
    assert chosen.mac_c2s is None and chosen.mac_s2c is None


def test_packet_round_trip_and_padding() -> None:
    encoder = PacketEncoder(os.urandom)
    decoder = PacketDecoder(35000, 35000)
    for size in (1, 7, 8, 255, 4096, 32768):
        payload = bytes([size % 256]) * size
        wire_bytes = encoder.encode(payload)
        assert len(wire_bytes) % 8 == 0
        decoder.feed(wire_bytes[:3])
        assert decoder.next_payload() is None
        decoder.feed(wire_bytes[3:])
        assert decoder.next_payload() == payload


def test_data_before_version_complete_is_buffered() -> None:
    transport = new_transport()
    transport.data_to_send()
    assert transport.receive_data(b"SSH-2.0-te") == []
    events = transport.receive_data(b"st\r\n")
    assert events == [ev.VersionReceived("SSH-2.0-test")]


@given(st.binary(min_size=1, max_size=600))
def test_garbage_after_version_only_fails_cleanly(garbage: bytes) -> None:
    transport = new_transport()
    transport.data_to_send()
    events = transport.receive_data(b"SSH-2.0-fuzz\r\n" + garbage)
    for event in events:
        assert isinstance(event, ev.VersionReceived | ev.ConnectionFailed | ev.PeerDisconnected)
    if transport.closed:
        assert transport.data_to_send()  # a DISCONNECT (or plain line) went out


@given(st.binary(min_size=0, max_size=300))
def test_garbage_identification_only_fails_cleanly(garbage: bytes) -> None:
    transport = new_transport()
    for event in transport.receive_data(garbage + b"\n"):
        assert isinstance(event, ev.VersionReceived | ev.ConnectionFailed)


class _Sink:
    """Stands in for the transport under a ConnectionService."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = False

    def send(self, payload: bytes) -> None:
        self.sent.append(payload)

    def unimplemented(self) -> list[ev.Event]:
        return []


def _opened(
    limits: ChannelLimits | None = None, window: int = 100, max_packet: int = 40
) -> tuple[ConnectionService, _Sink, int]:
    sink = _Sink()
    service = ConnectionService(sink, limits or ChannelLimits())  # type: ignore[arg-type]
    events = service.handle(
        c.SSH_MSG_CHANNEL_OPEN,
        wire.byte(c.SSH_MSG_CHANNEL_OPEN)
        + wire.string("session")
        + wire.uint32(7)
        + wire.uint32(window)
        + wire.uint32(max_packet),
    )
    assert isinstance(events[0], ev.ChannelOpenRequested)
    local = service.accept_open(7)
    sink.sent.clear()
    return service, sink, local


def test_output_respects_window_and_packet_size_then_resumes() -> None:
    service, sink, local = _opened(window=100, max_packet=40)
    service.send_data(local, b"a" * 250)
    sizes = [len(wire.Reader(p, 5).string()) for p in sink.sent]
    assert sizes == [40, 40, 20]
    assert service.buffered(local) == 150
    service.close_channel(local)  # queued behind the data
    sink.sent.clear()
    events = service.handle(
        c.SSH_MSG_CHANNEL_WINDOW_ADJUST,
        wire.byte(c.SSH_MSG_CHANNEL_WINDOW_ADJUST) + wire.uint32(local) + wire.uint32(1000),
    )
    assert ev.ChannelWritable(local) in events
    kinds = [p[0] for p in sink.sent]
    assert kinds == [c.SSH_MSG_CHANNEL_DATA] * 4 + [c.SSH_MSG_CHANNEL_CLOSE]
    assert all(wire.Reader(p, 1).uint32() == 7 for p in sink.sent)


def test_window_adjust_after_consumption() -> None:
    limits = ChannelLimits(window=64, max_packet=32)
    service, sink, local = _opened(limits)
    for _ in range(2):
        events = service.handle(
            c.SSH_MSG_CHANNEL_DATA,
            wire.byte(c.SSH_MSG_CHANNEL_DATA) + wire.uint32(local) + wire.string(b"x" * 32),
        )
        assert events == [ev.ChannelDataReceived(local, b"x" * 32, 0)]
        service.consume(local, 32)
    adjust = [p for p in sink.sent if p[0] == c.SSH_MSG_CHANNEL_WINDOW_ADJUST]
    assert adjust and wire.Reader(adjust[0], 5).uint32() == 32


def test_overrun_drops_only_the_channel() -> None:
    limits = ChannelLimits(window=64, max_packet=64)
    service, sink, local = _opened(limits)
    events = service.handle(
        c.SSH_MSG_CHANNEL_DATA,
        wire.byte(c.SSH_MSG_CHANNEL_DATA) + wire.uint32(local) + wire.string(b"x" * 65),
    )
    assert isinstance(events[0], ev.ChannelClosed) and events[0].error
    assert sink.sent[-1][0] == c.SSH_MSG_CHANNEL_CLOSE
    # The peer's CLOSE completes it without a second report.
    assert (
        service.handle(
            c.SSH_MSG_CHANNEL_CLOSE, wire.byte(c.SSH_MSG_CHANNEL_CLOSE) + wire.uint32(local)
        )
        == []
    )
    assert service.channel_ids() == []


def test_replies_keep_request_order() -> None:
    service, sink, local = _opened()
    for name in ("env", "pty-req", "exec"):
        service.handle(
            c.SSH_MSG_CHANNEL_REQUEST,
            wire.byte(c.SSH_MSG_CHANNEL_REQUEST)
            + wire.uint32(local)
            + wire.string(name)
            + wire.boolean(True),
        )
    service.channel_reply(local, True)
    service.channel_reply(local, False)
    service.channel_reply(local, True)
    assert [p[0] for p in sink.sent] == [
        c.SSH_MSG_CHANNEL_SUCCESS,
        c.SSH_MSG_CHANNEL_FAILURE,
        c.SSH_MSG_CHANNEL_SUCCESS,
    ]
