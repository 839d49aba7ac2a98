"""The SSH transport layer (RFC 4253) as a sans-IO state machine, server side.

Feed bytes with :meth:`ServerTransport.receive_data`, act on the returned
events, write :meth:`ServerTransport.data_to_send` to the peer. Services above
the transport (user authentication, then the connection protocol) plug in as
:class:`Service` objects and send through :meth:`ServerTransport.send`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from spindlex_tw.core import wire
from spindlex_tw.core.algorithms.ciphers import CIPHERS, make_opener, make_sealer
from spindlex_tw.core.algorithms.compression import (
    COMPRESSIONS,
    make_compressor,
    make_decompressor,
)
from spindlex_tw.core.algorithms.kex_methods import KEX_METHODS, KexSpec, derive_key
from spindlex_tw.core.algorithms.macs import MACS
from spindlex_tw.core.errors import ProtocolError
from spindlex_tw.core.events import (
    ConnectionFailed,
    Event,
    KeyExchangeCompleted,
    PeerDisconnected,
    VersionReceived,
)
from spindlex_tw.core.kexinit import (
    EXT_INFO_C,
    STRICT_KEX_C,
    STRICT_KEX_S,
    KexInit,
    Negotiated,
    guess_was_right,
    negotiate,
)
from spindlex_tw.core.packet import PacketDecoder, PacketEncoder
from spindlex_tw.core.services import Service
from spindlex_tw.core.signatures import HOST_KEY_ALGORITHMS, USER_KEY_ALGORITHMS, HostKey
from spindlex_tw.core.version import VersionExchange, VersionLimits, identification_line
from spindlex_tw.protocol import constants as c

Rng = Callable[[int], bytes]

_GENERIC = frozenset(
    {c.SSH_MSG_DISCONNECT, c.SSH_MSG_IGNORE, c.SSH_MSG_UNIMPLEMENTED, c.SSH_MSG_DEBUG}
)
_KEX_METHOD_RANGE = range(30, 50)
_INITIAL_KEX_MESSAGES = frozenset(
    {*_GENERIC, c.SSH_MSG_KEXINIT, c.SSH_MSG_NEWKEYS, *_KEX_METHOD_RANGE}
)
_AEAD_CIPHERS = frozenset(name for name, spec in CIPHERS.items() if spec.aead)
_STRICT_FORBIDDEN = frozenset({c.SSH_MSG_IGNORE, c.SSH_MSG_DEBUG, c.SSH_MSG_UNIMPLEMENTED})
# What we send under the old keys once a re-key is due: KEXINIT, the kex reply,
# NEWKEYS and a DISCONNECT, with room to spare.
_KEX_PACKETS = 16


@dataclass
class TransportConfig:
    kex_algorithms: list[str] = field(default_factory=lambda: list(KEX_METHODS))
    ciphers: list[str] = field(default_factory=lambda: list(CIPHERS))
    macs: list[str] = field(default_factory=lambda: list(MACS))
    compressions: list[str] = field(default_factory=lambda: list(COMPRESSIONS))
    version: VersionLimits = field(default_factory=VersionLimits)
    software_version: str | None = None
    max_packet_length: int = 35000  # RFC 4253 6.1: what every implementation must accept
    max_payload: int = 32768 + 1024  # channel data of 32 KiB plus message overhead
    # Re-key when either direction has carried this much under one key (OpenSSH's
    # RekeyLimit), or this many packets (OpenSSH's MAX_PACKETS).
    rekey_bytes: int = 1 << 30
    rekey_packets: int = 1 << 31
    # A peer's packets under one key beyond this would reuse a sequence number,
    # which chacha20-poly1305 uses as its nonce: the peer is disconnected first.
    packet_limit: int = 1 << 32


@dataclass
class _Kex:
    """State of one key exchange, from our KEXINIT to the peer's NEWKEYS."""

    ours: KexInit
    our_payload: bytes
    theirs: KexInit | None = None
    their_payload: bytes = b""
    negotiated: Negotiated | None = None
    spec: KexSpec | None = None
    skip_guess: bool = False
    newkeys_sent: bool = False
    keys: dict[str, bytes] = field(default_factory=dict)


class ServerTransport:
    """Server side of one SSH connection's transport layer."""

    def __init__(self, config: TransportConfig, host_keys: Sequence[HostKey], rng: Rng) -> None:
        if not host_keys:
            raise ValueError("at least one host key is required")
        if not 0 < config.rekey_packets <= config.packet_limit - _KEX_PACKETS:
            # Once our packets under one key reach rekey_packets, a re-key
            # starts and only the key exchange goes out until our NEWKEYS.
            # (Between our NEWKEYS and the peer's, channel data is bounded by
            # the windows the peer granted: it sends nothing else meanwhile.)
            raise ValueError("rekey_packets must leave room below packet_limit")
        self.config = config
        self._rng = rng
        self._host_keys = {alg: key for key in host_keys for alg in key.host_key_algorithms()}
        self._host_key_algs = [a for a in HOST_KEY_ALGORITHMS if a in self._host_keys]
        self._version = VersionExchange(config.version)
        self._decoder = PacketDecoder(config.max_packet_length, config.max_payload)
        self._encoder = PacketEncoder(rng)
        self._out: list[bytes | bytearray] = []
        self._held: list[bytes] = []  # upper-layer payloads held back during a key exchange
        self._our_version = (
            identification_line(config.software_version)
            if config.software_version
            else identification_line()
        )
        self.peer_version: str | None = None
        self.session_id: bytes | None = None
        self._kex: _Kex | None = None
        self._kex_count = 0
        self._strict = False
        self._client_ext_info = False
        # zlib@openssh.com runs once our USERAUTH_SUCCESS is on the wire, with a
        # fresh stream per direction at each of that direction's NEWKEYS.
        self._compressing = False
        self._success_held: int | None = None  # held packets up to USERAUTH_SUCCESS
        self._out_compression = "none"  # negotiated for the outbound keys in use
        self._in_compression = "none"
        self._negotiated: Negotiated | None = None
        self.authenticated = False
        self.service: Service | None = None
        self._service_name: str | None = None
        self._service_factories: dict[str, Callable[[], Service]] = {}
        self.closed = False
        self._out.append(self._our_version)
        self._start_kex()

    # --- public interface --------------------------------------------------------

    def data_to_send(self) -> bytes:
        return b"".join(self.packets_to_send())

    def packets_to_send(self) -> list[bytes | bytearray]:
        """What :meth:`data_to_send` joins: each packet in its own buffer, for a gathering send."""
        out, self._out = self._out, []
        return out

    def register_service(self, name: str, factory: Callable[[], Service]) -> None:
        """Offer ``name`` (e.g. ``ssh-userauth``) to a SERVICE_REQUEST."""
        self._service_factories[name] = factory

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed ``data`` and return the events of every complete packet in it."""
        events = self.feed(data)
        while (more := self.next_events()) is not None:
            events.extend(more)
        return events

    def feed(self, data: bytes) -> list[Event]:
        """Take bytes from the peer; packets are then read with :meth:`next_events`.

        Returns the events of the identification exchange, if it completed.
        """
        if self.closed:
            return []
        if self.peer_version is not None:
            self._decoder.feed(data)
            return []
        try:
            rest = self._version.feed(data)
        except ProtocolError as exc:
            return [self.fail(exc)]
        if rest is None:
            return []
        assert self._version.peer_version is not None
        self.peer_version = self._version.peer_version.decode("ascii")
        self._decoder.feed(rest)
        return [VersionReceived(self.peer_version)]

    def next_events(self) -> list[Event] | None:
        """The events of the next complete packet, or ``None`` until more bytes arrive.

        One packet at a time, so the adapter answers each (and can stop
        reading) before the next is looked at.
        """
        if self.closed or self.peer_version is None:
            return None
        try:
            if (
                self._decoder.packets_since_kex >= self.config.packet_limit
                and self._decoder.buffered()
            ):
                raise ProtocolError(
                    f"{self._decoder.packets_since_kex} packets under one key: "
                    "the peer did not re-key"
                )
            payload = self._decoder.next_payload()
            if payload is None:
                return None
            events = self._dispatch(payload)
            self._maybe_rekey()
        except ProtocolError as exc:
            return [self.fail(exc)]
        return events

    def fail(self, exc: ProtocolError) -> ConnectionFailed:
        """Answer a peer's protocol violation with DISCONNECT and stop."""
        reply = getattr(exc, "reply", None)
        if self.peer_version is None and isinstance(reply, bytes):
            self._out.append(reply)  # no packet protocol yet: a plain line, as OpenSSH
            self.closed = True
        else:
            self.disconnect(exc.reason, exc.description)
        return ConnectionFailed(exc.reason, exc.description)

    def disconnect(self, reason: int, description: str) -> None:
        if self.closed:
            return
        self._write_packet(
            wire.byte(c.SSH_MSG_DISCONNECT)
            + wire.uint32(reason)
            + wire.string(description)
            + wire.string(b"")
        )
        self.closed = True

    def send(self, payload: bytes) -> None:
        """Send an upper-layer message, holding it back while keys change."""
        self.send_parts((payload,))

    def send_parts(self, parts: Sequence[bytes | bytearray | memoryview]) -> None:
        """:meth:`send` for a message in pieces, copied once: into its packet.

        (Held back during a key exchange, the pieces are joined; a single
        ``bytes`` piece joins to itself, no copy.)
        """
        if self.closed:
            return
        if self._holding():
            self._held.append(b"".join(parts))
        else:
            self._out.append(self._encoder.encode_parts(parts))
            self._maybe_rekey()

    def _holding(self) -> bool:
        return self._kex is not None and not self._kex.newkeys_sent

    def request_rekey(self) -> None:
        """Start a key re-exchange (by volume or time) unless one is running."""
        if self._kex is None and self.session_id is not None and not self.closed:
            self._start_kex()

    def start_delayed_compression(self) -> None:
        """Called just after USERAUTH_SUCCESS was sent: zlib@openssh.com starts with it.

        As OpenSSH's sshd, the switch happens when USERAUTH_SUCCESS is actually
        written: if a key exchange holds it back, once the held packets go out.
        """
        self.authenticated = True
        if self._holding():
            self._success_held = len(self._held)
        else:
            self._start_compression()

    def _start_compression(self) -> None:
        self._compressing = True
        self._encoder.set_compressor(make_compressor(self._out_compression))
        # The client compresses from the first packet it sends after reading
        # USERAUTH_SUCCESS. Mid key exchange, that is after its NEWKEYS (sent
        # when it read our reply, before our NEWKEYS and USERAUTH_SUCCESS),
        # so inbound compression then starts with the new keys.
        if self._kex is None:
            self._decoder.set_decompressor(make_decompressor(self._in_compression))

    @property
    def negotiated(self) -> Negotiated | None:
        """The algorithms of the last completed key exchange."""
        return self._negotiated

    @property
    def pending_output(self) -> int:
        return sum(len(chunk) for chunk in self._out)

    # --- dispatch -------------------------------------------------------------------

    def _dispatch(self, payload: bytes | memoryview) -> list[Event]:
        msg = payload[0]
        kex = self._kex
        if kex is not None and kex.skip_guess and msg in _KEX_METHOD_RANGE:
            kex.skip_guess = False  # RFC 4253 7: the client's wrong guess is dropped
            return []
        if self._kex_count == 0 and msg not in _INITIAL_KEX_MESSAGES:
            # Nothing but key exchange may come before the first NEWKEYS; with
            # strict KEX not even IGNORE or DEBUG (Terrapin, CVE-2023-48795).
            raise ProtocolError(f"unexpected message {msg} before key exchange completed")
        if self._strict and self._kex_count == 0 and msg in _STRICT_FORBIDDEN:
            raise ProtocolError(f"strict KEX violation: unexpected message {msg}")
        if kex is not None and kex.theirs is not None and msg not in _INITIAL_KEX_MESSAGES:
            # RFC 4253 7.1: between the peer's KEXINIT and its NEWKEYS only
            # transport and key exchange messages may come.
            raise ProtocolError(f"unexpected message {msg} during key exchange")
        # Only channel data comes as a view (PacketDecoder), and none of it is the
        # transport's: bytes() below hands on the same object, no copy.
        handler = self._transport_handlers.get(msg)
        if handler is not None:
            return handler(self, bytes(payload))
        if msg in _KEX_METHOD_RANGE:
            return self._on_kex_method(bytes(payload))
        if msg < 50 or msg > 127:
            return self.unimplemented()
        if self.service is None:
            raise ProtocolError(f"unexpected message {msg} before a service was accepted")
        return self.service.handle(msg, payload)

    def unimplemented(self) -> list[Event]:
        """Answer a message number nobody knows with UNIMPLEMENTED (services too)."""
        seq = (self._decoder.sequence - 1) & 0xFFFFFFFF
        self.send(wire.byte(c.SSH_MSG_UNIMPLEMENTED) + wire.uint32(seq))
        return []

    def _on_disconnect(self, payload: bytes) -> list[Event]:
        reader = wire.Reader(payload, 1)
        reason = reader.uint32()
        description = reader.string().decode("utf-8", "replace")
        self.closed = True
        return [PeerDisconnected(reason, description)]

    def _on_ignored(self, payload: bytes) -> list[Event]:
        return []

    def _on_service_request(self, payload: bytes) -> list[Event]:
        reader = wire.Reader(payload, 1)
        name = reader.ascii()
        reader.done()
        factory = self._service_factories.get(name)
        if self.service is not None and name == self._service_name and not self.authenticated:
            # Paramiko asks again before each attempt; OpenSSH's sshd accepts that too.
            self.send(wire.byte(c.SSH_MSG_SERVICE_ACCEPT) + wire.string(name))
            return []
        if factory is None or self.service is not None:
            description = f"service {name} not available"
            self.disconnect(c.SSH_DISCONNECT_SERVICE_NOT_AVAILABLE, description)
            return [ConnectionFailed(c.SSH_DISCONNECT_SERVICE_NOT_AVAILABLE, description)]
        self.service = factory()
        self._service_name = name
        self.send(wire.byte(c.SSH_MSG_SERVICE_ACCEPT) + wire.string(name))
        return []

    # --- key exchange ---------------------------------------------------------------

    def _start_kex(self) -> None:
        kex_names = list(self.config.kex_algorithms)
        if self._kex_count == 0:
            kex_names.append(STRICT_KEX_S)
        ours = KexInit(
            cookie=self._rng(16),
            kex=kex_names,
            host_key=self._host_key_algs,
            cipher_c2s=self.config.ciphers,
            cipher_s2c=self.config.ciphers,
            mac_c2s=self.config.macs,
            mac_s2c=self.config.macs,
            compression_c2s=self.config.compressions,
            compression_s2c=self.config.compressions,
        )
        payload = ours.encode()
        self._kex = _Kex(ours=ours, our_payload=payload)
        self._write_packet(payload)

    def _on_kexinit(self, payload: bytes) -> list[Event]:
        if self._kex is None:
            self._start_kex()  # the client starts a re-exchange
        kex = self._kex
        assert kex is not None
        if kex.theirs is not None:
            raise ProtocolError("second KEXINIT during key exchange")
        theirs = KexInit.decode(payload)
        if self._kex_count == 0:
            self._client_ext_info = EXT_INFO_C in theirs.kex
            self._strict = STRICT_KEX_C in theirs.kex
            if self._strict and self._decoder.sequence != 1:
                raise ProtocolError("strict KEX violation: KEXINIT was not the first packet")
        kex.theirs = theirs
        kex.their_payload = payload
        kex.negotiated = negotiate(theirs, kex.ours, _AEAD_CIPHERS)
        kex.spec = KEX_METHODS[kex.negotiated.kex]
        kex.skip_guess = theirs.first_kex_follows and not guess_was_right(theirs, kex.ours)
        return []

    def _on_kex_method(self, payload: bytes) -> list[Event]:
        kex = self._kex
        if kex is None or kex.spec is None or kex.negotiated is None or kex.newkeys_sent:
            raise ProtocolError(f"unexpected key exchange message {payload[0]}")
        if payload[0] != c.SSH_MSG_KEX_ECDH_INIT:
            raise ProtocolError(f"unexpected key exchange message {payload[0]}")
        result = kex.spec.server_exchange(payload[1:], self._rng)
        host_key = self._host_keys[kex.negotiated.host_key]
        host_blob = host_key.get_public_key_bytes()
        assert self.peer_version is not None
        exchange_hash = kex.spec.hash(
            b"".join(
                (
                    wire.string(self.peer_version.encode("ascii")),
                    wire.string(self._our_version.rstrip(b"\r\n")),
                    wire.string(kex.their_payload),
                    wire.string(kex.our_payload),
                    wire.string(host_blob),
                    result.client_field,
                    result.reply_field,
                    result.shared_secret,
                )
            )
        )
        if self.session_id is None:
            self.session_id = exchange_hash
        signature = host_key.sign_ssh(exchange_hash, kex.negotiated.host_key)
        self._write_packet(
            wire.byte(c.SSH_MSG_KEX_ECDH_REPLY)
            + wire.string(host_blob)
            + result.reply_field
            + wire.string(signature)
        )
        self._derive_keys(kex, result.shared_secret, exchange_hash)
        self._write_packet(wire.byte(c.SSH_MSG_NEWKEYS))
        kex.newkeys_sent = True
        self._activate_outbound(kex)
        if self._kex_count == 0 and self._client_ext_info:
            self._write_packet(
                wire.byte(c.SSH_MSG_EXT_INFO)
                + wire.uint32(1)
                + wire.string("server-sig-algs")
                + wire.string(",".join(USER_KEY_ALGORITHMS))
            )
        held, self._held = self._held, []
        success, self._success_held = self._success_held, None
        for count, queued in enumerate(held, 1):
            self._write_packet(queued)
            if count == success:
                self._start_compression()
        return []

    def _derive_keys(self, kex: _Kex, secret: bytes, exchange_hash: bytes) -> None:
        spec = kex.spec
        negotiated = kex.negotiated
        assert spec is not None and negotiated is not None and self.session_id is not None
        sizes = {
            b"A": CIPHERS[negotiated.cipher_c2s].iv_size,
            b"B": CIPHERS[negotiated.cipher_s2c].iv_size,
            b"C": CIPHERS[negotiated.cipher_c2s].key_size,
            b"D": CIPHERS[negotiated.cipher_s2c].key_size,
            b"E": MACS[negotiated.mac_c2s].key_size if negotiated.mac_c2s else 0,
            b"F": MACS[negotiated.mac_s2c].key_size if negotiated.mac_s2c else 0,
        }
        kex.keys = {
            letter.decode(): derive_key(spec, secret, exchange_hash, letter, self.session_id, size)
            for letter, size in sizes.items()
        }

    def _activate_outbound(self, kex: _Kex) -> None:
        negotiated = kex.negotiated
        assert negotiated is not None
        keys = kex.keys
        self._encoder.set_protection(
            make_sealer(negotiated.cipher_s2c, negotiated.mac_s2c, keys["D"], keys["B"], keys["F"])
        )
        if self._strict:
            self._encoder.reset_sequence()
        # RFC 4253 7.3 and OpenSSH: each direction's compression, like its keys,
        # changes at its sender's NEWKEYS, and restarts its stream there.
        self._out_compression = negotiated.compression_s2c
        self._encoder.set_compressor(
            make_compressor(self._out_compression) if self._compressing else None
        )

    def _on_newkeys(self, payload: bytes) -> list[Event]:
        kex = self._kex
        if kex is None or not kex.newkeys_sent:
            raise ProtocolError("unexpected NEWKEYS")
        negotiated = kex.negotiated
        assert negotiated is not None
        keys = kex.keys
        self._decoder.set_protection(
            make_opener(negotiated.cipher_c2s, negotiated.mac_c2s, keys["C"], keys["A"], keys["E"])
        )
        if self._strict:
            self._decoder.reset_sequence()
        self._in_compression = negotiated.compression_c2s
        self._decoder.set_decompressor(
            make_decompressor(self._in_compression) if self._compressing else None
        )
        initial = self._kex_count == 0
        self._kex = None
        self._kex_count += 1
        self._negotiated = negotiated
        return [KeyExchangeCompleted(negotiated, initial)]

    # --- output ---------------------------------------------------------------------

    def _write_packet(self, payload: bytes) -> None:
        self._out.append(self._encoder.encode(payload))
        self._maybe_rekey()

    def _maybe_rekey(self) -> None:
        if self._kex is not None or self.session_id is None or self.closed:
            return
        encoder, decoder, config = self._encoder, self._decoder, self.config
        # Called for every packet each way: plain comparisons, no max() calls.
        limit = config.rekey_bytes
        packets = config.rekey_packets
        if (
            encoder.bytes_since_kex > limit
            or decoder.bytes_since_kex > limit
            or encoder.packets_since_kex >= packets
            or decoder.packets_since_kex >= packets
        ):
            self._start_kex()

    _transport_handlers: dict[int, Callable[[ServerTransport, bytes], list[Event]]] = {
        c.SSH_MSG_DISCONNECT: _on_disconnect,
        c.SSH_MSG_IGNORE: _on_ignored,
        c.SSH_MSG_DEBUG: _on_ignored,
        c.SSH_MSG_UNIMPLEMENTED: _on_ignored,
        c.SSH_MSG_SERVICE_REQUEST: _on_service_request,
        c.SSH_MSG_KEXINIT: _on_kexinit,
        c.SSH_MSG_NEWKEYS: _on_newkeys,
    }
