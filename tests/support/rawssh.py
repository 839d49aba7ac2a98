"""A minimal SSH client of our own, for sending what well-behaved clients never send.

It speaks just enough (curve25519-sha256, aes128-gcm, optionally zlib) to reach
any point of the protocol, then lets a test inject bytes or messages. Packet
protection reuses the project's registries; the interop suites prove those
against real clients, so here they only carry the hostile traffic.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from spindlex_tw.core import wire
from spindlex_tw.core.algorithms.ciphers import make_opener, make_sealer
from spindlex_tw.core.algorithms.compression import make_compressor, make_decompressor
from spindlex_tw.core.kexinit import KexInit
from spindlex_tw.core.packet import PacketDecoder, PacketEncoder
from spindlex_tw.crypto.pkey import PKey
from spindlex_tw.protocol import constants as c

CLIENT_VERSION = b"SSH-2.0-rawssh_test"


class Closed(Exception):
    """The server closed the connection."""


@dataclass
class Disconnect:
    reason: int
    description: str


class RawClient:
    def __init__(self, port: int, timeout: float = 20.0, source: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection(
            ("127.0.0.1", port), timeout=timeout, source_address=(source, 0)
        )
        self._start_codec()

    def _start_codec(self) -> None:
        """Packet state; memory_client.py starts here over a pipe instead of a socket."""
        self.decoder = PacketDecoder(1 << 20, 1 << 20)
        self.encoder = PacketEncoder(os.urandom)
        self.server_version = b""
        self.session_id = b""
        self._pending = b""

    # --- bytes ---------------------------------------------------------------------
    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv_raw(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise Closed
        return data

    def read_all(self) -> bytes:
        """Everything until the server closes (bounded by the socket timeout)."""
        chunks = []
        try:
            while True:
                chunks.append(self.recv_raw())
        except Closed:
            pass
        return b"".join(chunks)

    def closed_by_server(self) -> bool:
        try:
            self.read_all()
        except OSError:
            return False
        return True

    # --- version and packets ---------------------------------------------------------
    def exchange_versions(self, ours: bytes = CLIENT_VERSION) -> None:
        self.send_raw(ours + b"\r\n")
        buffer = b""
        while b"\n" not in buffer:
            buffer += self.recv_raw()
        line, _, rest = buffer.partition(b"\n")
        self.server_version = line.rstrip(b"\r")
        self.decoder.feed(rest)

    def send(self, payload: bytes) -> None:
        self.send_raw(self.encoder.encode(payload))

    def recv(self) -> bytes:
        while True:
            payload = self.decoder.next_payload()
            if payload is not None:
                return payload
            self.decoder.feed(self.recv_raw())

    def recv_skipping(self, *ignored: int) -> bytes:
        while True:
            payload = self.recv()
            if payload[0] not in ignored:
                return payload

    def expect_disconnect(self) -> Disconnect:
        payload = self.recv_skipping(
            c.SSH_MSG_IGNORE,
            c.SSH_MSG_DEBUG,
            c.SSH_MSG_EXT_INFO,
            c.SSH_MSG_KEXINIT,
            c.SSH_MSG_USERAUTH_BANNER,
        )
        assert payload[0] == c.SSH_MSG_DISCONNECT, payload[:1]
        reader = wire.Reader(payload, 1)
        return Disconnect(reader.uint32(), reader.text())

    # --- key exchange ----------------------------------------------------------------
    def kexinit(
        self, strict: bool = True, ext_info: bool = True, compression: str = "none"
    ) -> bytes:
        kex = ["curve25519-sha256"]
        if ext_info:
            kex.append("ext-info-c")
        if strict:
            kex.append("kex-strict-c-v00@openssh.com")
        ours = KexInit(
            cookie=os.urandom(16),
            kex=kex,
            host_key=["ssh-ed25519", "rsa-sha2-256", "ecdsa-sha2-nistp256"],
            cipher_c2s=["aes128-gcm@openssh.com"],
            cipher_s2c=["aes128-gcm@openssh.com"],
            mac_c2s=["hmac-sha2-256"],
            mac_s2c=["hmac-sha2-256"],
            compression_c2s=[compression],
            compression_s2c=[compression],
        ).encode()
        self.send(ours)
        return ours

    def handshake(
        self, strict: bool = True, ext_info: bool = True, compression: str = "none"
    ) -> None:
        """Version exchange and a full curve25519 key exchange; ends with keys in use."""
        self.exchange_versions()
        our_kexinit = self.kexinit(strict, ext_info, compression)
        their_kexinit = self.recv()
        assert their_kexinit[0] == c.SSH_MSG_KEXINIT
        self.finish_kex(our_kexinit, their_kexinit, strict)

    def finish_kex(self, our_kexinit: bytes, their_kexinit: bytes, strict: bool) -> None:
        private = x25519.X25519PrivateKey.generate()
        public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.send(wire.byte(c.SSH_MSG_KEX_ECDH_INIT) + wire.string(public))
        reply = self.recv()
        assert reply[0] == c.SSH_MSG_KEX_ECDH_REPLY, reply[:1]
        reader = wire.Reader(reply, 1)
        host_blob, server_public, signature = reader.string(), reader.string(), reader.string()
        secret = wire.mpint(
            int.from_bytes(
                private.exchange(x25519.X25519PublicKey.from_public_bytes(server_public)), "big"
            )
        )
        exchange_hash = hashlib.sha256(
            b"".join(
                (
                    wire.string(CLIENT_VERSION),
                    wire.string(self.server_version),
                    wire.string(our_kexinit),
                    wire.string(their_kexinit),
                    wire.string(host_blob),
                    wire.string(public),
                    wire.string(server_public),
                    secret,
                )
            )
        ).digest()
        host_key = PKey.from_public_blob(host_blob)
        assert host_key.verify_ssh(exchange_hash, signature, host_key.host_key_algorithms())
        self.session_id = self.session_id or exchange_hash

        def derive(letter: bytes, size: int) -> bytes:
            return hashlib.sha256(secret + exchange_hash + letter + self.session_id).digest()[:size]

        newkeys = self.recv()
        assert newkeys[0] == c.SSH_MSG_NEWKEYS
        self.send(wire.byte(c.SSH_MSG_NEWKEYS))
        self.encoder.set_protection(
            make_sealer("aes128-gcm@openssh.com", None, derive(b"C", 16), derive(b"A", 12), b"")
        )
        self.decoder.set_protection(
            make_opener("aes128-gcm@openssh.com", None, derive(b"D", 16), derive(b"B", 12), b"")
        )
        if strict:
            self.encoder.reset_sequence()
            self.decoder.reset_sequence()

    # --- higher layers -------------------------------------------------------------------
    def request_service(self, name: str = "ssh-userauth") -> bytes:
        self.send(wire.byte(c.SSH_MSG_SERVICE_REQUEST) + wire.string(name))
        return self.recv_skipping(c.SSH_MSG_EXT_INFO, c.SSH_MSG_IGNORE)

    def password(self, user: str, password: str) -> bytes:
        self.send(password_request(user, password))
        return self.recv_skipping(c.SSH_MSG_USERAUTH_BANNER, c.SSH_MSG_EXT_INFO)

    def login(
        self, user: str = "alice", password: str = "secret", compression: str = "none"
    ) -> None:
        self.handshake(compression=compression)
        assert self.request_service()[0] == c.SSH_MSG_SERVICE_ACCEPT
        assert self.password(user, password)[0] == c.SSH_MSG_USERAUTH_SUCCESS
        if compression != "none":  # zlib@openssh.com starts after USERAUTH_SUCCESS
            self.encoder.set_compressor(make_compressor(compression))
            self.decoder.set_decompressor(make_decompressor(compression))

    def close(self) -> None:
        # shutdown() first: it wakes a thread blocked in recv() on this socket
        # (a flood's pump), which close() alone leaves waiting for its timeout.
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

    def close_and_wait(self) -> None:
        """End our side, then wait for the server to close its own: it has let us go."""
        self.sock.shutdown(socket.SHUT_WR)
        self.read_all()
        self.sock.close()


def password_request(user: str, password: str) -> bytes:
    """USERAUTH_REQUEST for the "password" method (RFC 4252 section 8)."""
    return (
        wire.byte(c.SSH_MSG_USERAUTH_REQUEST)
        + wire.string(user)
        + wire.string("ssh-connection")
        + wire.string("password")
        + wire.boolean(False)
        + wire.string(password)
    )
