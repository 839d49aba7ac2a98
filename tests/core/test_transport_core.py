"""The sans-IO transport, driven in memory: no sockets, no reactor."""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spindlex_tw.core import events as ev
from spindlex_tw.core import wire
from spindlex_tw.core.algorithms.compression import make_compressor, make_decompressor
from spindlex_tw.core.connection import ChannelLimits, ConnectionService
from spindlex_tw.core.errors import ProtocolError
from spindlex_tw.core.kexinit import KexInit, negotiate
from spindlex_tw.core.packet import PacketDecoder, PacketEncoder
from spindlex_tw.core.transport import ServerTransport, TransportConfig
from spindlex_tw.core.version import VersionExchange, VersionLimits
from spindlex_tw.crypto.pkey import Ed25519Key
from spindlex_tw.protocol import constants as c
from tests.support.rawssh import Disconnect, RawClient

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

    def send_parts(self, parts: list[bytes | memoryview]) -> None:
        self.sent.append(b"".join(parts))

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


# --- re-keying by packet count, and compression across re-keys ---------------------------------

ZLIB = "zlib@openssh.com"


class _Memory:
    """A RawClient's socket whose far end is a ServerTransport, in memory."""

    def __init__(self, transport: ServerTransport) -> None:
        self.transport = transport
        self.events: list[ev.Event] = []

    def sendall(self, data: bytes) -> None:
        self.events += self.transport.receive_data(data)

    def recv(self, size: int) -> bytes:
        return self.transport.data_to_send()  # b"" (nothing to say) reads as closed


class _MemoryClient(RawClient):
    """The raw test client, talking to a ServerTransport without a socket or reactor."""

    def __init__(self, transport: ServerTransport) -> None:
        self.sock = _Memory(transport)  # type: ignore[assignment]
        self.decoder = PacketDecoder(1 << 20, 1 << 20)
        self.encoder = PacketEncoder(os.urandom)
        self.server_version = b""
        self.session_id = b""

    @property
    def events(self) -> list[ev.Event]:
        return self.sock.events  # type: ignore[attr-defined, no-any-return]


def _keyed(transport: ServerTransport, compression: str = "none") -> _MemoryClient:
    client = _MemoryClient(transport)
    client.handshake(compression=compression)
    assert client.recv()[0] == c.SSH_MSG_EXT_INFO
    return client


def _ignore(client: RawClient, count: int) -> None:
    for _ in range(count):
        client.send(wire.byte(c.SSH_MSG_IGNORE) + wire.string(b"x"))


def test_packet_count_starts_a_rekey_and_a_peer_ignoring_it_is_disconnected() -> None:
    transport = new_transport(rekey_packets=10, packet_limit=40)
    client = _keyed(transport)
    _ignore(client, 9)
    assert transport.pending_output == 0
    _ignore(client, 1)  # the 10th packet under these keys
    assert client.recv()[0] == c.SSH_MSG_KEXINIT
    # The client goes on under the old keys: up to the limit, then no further.
    _ignore(client, 30)
    assert transport.pending_output == 0 and not transport.closed
    _ignore(client, 1)
    assert transport.closed
    failed = [e for e in client.events if isinstance(e, ev.ConnectionFailed)]
    assert failed and failed[0].reason == c.SSH_DISCONNECT_PROTOCOL_ERROR
    disconnect = client.expect_disconnect()
    assert disconnect == Disconnect(
        c.SSH_DISCONNECT_PROTOCOL_ERROR, "40 packets under one key: the peer did not re-key"
    )


def test_packet_count_rekey_completed_starts_the_count_over() -> None:
    transport = new_transport(rekey_packets=10, packet_limit=40)
    client = _keyed(transport)
    _ignore(client, 10)
    theirs = client.recv()
    assert theirs[0] == c.SSH_MSG_KEXINIT
    client.finish_kex(client.kexinit(), theirs, strict=True)
    _ignore(client, 9)
    assert transport.pending_output == 0
    _ignore(client, 1)
    assert client.recv()[0] == c.SSH_MSG_KEXINIT
    assert not transport.closed and transport.negotiated is not None


def test_rekey_packets_must_leave_room_below_the_limit() -> None:
    with pytest.raises(ValueError, match="rekey_packets"):
        new_transport(rekey_packets=40, packet_limit=40)


def _compressed_ping(client: RawClient) -> None:
    """An unknown message from the client; the server's UNIMPLEMENTED comes back."""
    client.send(wire.byte(200))
    answer = client.recv()
    assert answer[0] == c.SSH_MSG_UNIMPLEMENTED, answer[:1]


def test_delayed_compression_starts_where_a_held_userauth_success_is_written() -> None:
    transport = new_transport()
    client = _keyed(transport, ZLIB)
    transport.request_rekey()
    # USERAUTH_SUCCESS (and a packet after it) held back by the key exchange,
    # as UserAuthService.accept sends them.
    transport.send(wire.byte(c.SSH_MSG_USERAUTH_SUCCESS))
    transport.start_delayed_compression()
    transport.send(wire.byte(c.SSH_MSG_IGNORE) + wire.string(b"after"))
    theirs = client.recv()
    assert theirs[0] == c.SSH_MSG_KEXINIT
    client.finish_kex(client.kexinit(compression=ZLIB), theirs, strict=True)
    # Not compressed: written before the switch.
    assert client.recv() == wire.byte(c.SSH_MSG_USERAUTH_SUCCESS)
    client.decoder.set_decompressor(make_decompressor(ZLIB))
    assert client.recv() == wire.byte(c.SSH_MSG_IGNORE) + wire.string(b"after")
    # The client sent its NEWKEYS before reading USERAUTH_SUCCESS, so it
    # compresses from its next packet, under the new keys.
    client.encoder.set_compressor(make_compressor(ZLIB))
    _compressed_ping(client)
    assert not transport.closed, client.events


def test_each_newkeys_starts_fresh_zlib_streams() -> None:
    transport = new_transport()
    client = _keyed(transport, ZLIB)
    transport.send(wire.byte(c.SSH_MSG_USERAUTH_SUCCESS))
    transport.start_delayed_compression()
    assert client.recv() == wire.byte(c.SSH_MSG_USERAUTH_SUCCESS)
    for _ in range(3):
        client.encoder.set_compressor(make_compressor(ZLIB))
        client.decoder.set_decompressor(make_decompressor(ZLIB))
        _compressed_ping(client)
        _compressed_ping(client)  # the streams' dictionaries now hold history
        transport.request_rekey()
        theirs = client.recv()
        assert theirs[0] == c.SSH_MSG_KEXINIT
        client.finish_kex(client.kexinit(compression=ZLIB), theirs, strict=True)
    assert not transport.closed, client.events
