"""SSH_MSG_KEXINIT (RFC 4253 section 7.1) and algorithm negotiation as a pure function."""

from __future__ import annotations

from dataclasses import dataclass

from spindlex_tw.core import wire
from spindlex_tw.core.errors import ProtocolError
from spindlex_tw.protocol.constants import SSH_DISCONNECT_KEY_EXCHANGE_FAILED, SSH_MSG_KEXINIT

# Markers that travel in the kex_algorithms list but are not key exchanges.
EXT_INFO_C = "ext-info-c"
EXT_INFO_S = "ext-info-s"
STRICT_KEX_C = "kex-strict-c-v00@openssh.com"
STRICT_KEX_S = "kex-strict-s-v00@openssh.com"
_MARKERS = frozenset({EXT_INFO_C, EXT_INFO_S, STRICT_KEX_C, STRICT_KEX_S})


@dataclass(frozen=True)
class KexInit:
    cookie: bytes
    kex: list[str]
    host_key: list[str]
    cipher_c2s: list[str]
    cipher_s2c: list[str]
    mac_c2s: list[str]
    mac_s2c: list[str]
    compression_c2s: list[str]
    compression_s2c: list[str]
    first_kex_follows: bool = False

    def encode(self) -> bytes:
        return b"".join(
            (
                wire.byte(SSH_MSG_KEXINIT),
                self.cookie,
                wire.name_list(self.kex),
                wire.name_list(self.host_key),
                wire.name_list(self.cipher_c2s),
                wire.name_list(self.cipher_s2c),
                wire.name_list(self.mac_c2s),
                wire.name_list(self.mac_s2c),
                wire.name_list(self.compression_c2s),
                wire.name_list(self.compression_s2c),
                wire.name_list([]),
                wire.name_list([]),
                wire.boolean(self.first_kex_follows),
                wire.uint32(0),
            )
        )

    @classmethod
    def decode(cls, payload: bytes) -> KexInit:
        reader = wire.Reader(payload, 1)
        cookie = reader.raw(16)
        lists = [reader.name_list() for _ in range(10)]
        follows = reader.boolean()
        reader.uint32()  # reserved
        return cls(
            cookie,
            kex=lists[0],
            host_key=lists[1],
            cipher_c2s=lists[2],
            cipher_s2c=lists[3],
            mac_c2s=lists[4],
            mac_s2c=lists[5],
            compression_c2s=lists[6],
            compression_s2c=lists[7],
            first_kex_follows=follows,
        )


@dataclass(frozen=True)
class Negotiated:
    kex: str
    host_key: str
    cipher_c2s: str
    cipher_s2c: str
    mac_c2s: str | None
    mac_s2c: str | None
    compression_c2s: str
    compression_s2c: str


def _choose(category: str, client: list[str], server: list[str]) -> str:
    """RFC 4253: the first of the client's names that the server also offers."""
    offered = {name: name for name in server}
    for name in client:
        own = offered.get(name)
        if own is not None:
            return own  # our copy: the peer's lists need not outlive the key exchange
    raise ProtocolError(
        f"key exchange failed: no matching {category} found "
        f"(client offered {','.join(client) or 'nothing'}; "
        f"server offers {','.join(server)})",
        SSH_DISCONNECT_KEY_EXCHANGE_FAILED,
    )


def negotiate(client: KexInit, server: KexInit, aead_ciphers: frozenset[str]) -> Negotiated:
    """Pick one algorithm per category; AEAD ciphers make the MAC implicit (``None``)."""
    kex = _choose(
        "key exchange method",
        [n for n in client.kex if n not in _MARKERS],
        [n for n in server.kex if n not in _MARKERS],
    )
    host_key = _choose("host key algorithm", client.host_key, server.host_key)
    cipher_c2s = _choose("cipher (client to server)", client.cipher_c2s, server.cipher_c2s)
    cipher_s2c = _choose("cipher (server to client)", client.cipher_s2c, server.cipher_s2c)
    mac_c2s = (
        None
        if cipher_c2s in aead_ciphers
        else _choose("MAC (client to server)", client.mac_c2s, server.mac_c2s)
    )
    mac_s2c = (
        None
        if cipher_s2c in aead_ciphers
        else _choose("MAC (server to client)", client.mac_s2c, server.mac_s2c)
    )
    return Negotiated(
        kex=kex,
        host_key=host_key,
        cipher_c2s=cipher_c2s,
        cipher_s2c=cipher_s2c,
        mac_c2s=mac_c2s,
        mac_s2c=mac_s2c,
        compression_c2s=_choose(
            "compression (client to server)", client.compression_c2s, server.compression_c2s
        ),
        compression_s2c=_choose(
            "compression (server to client)", client.compression_s2c, server.compression_s2c
        ),
    )


def guess_was_right(client: KexInit, server: KexInit) -> bool:
    """RFC 4253 7.1: a guessed first kex packet counts only if both sides' lists
    start with the same key exchange and the same host key algorithm.

    Not "the client's first choices were the negotiated ones": a client whose
    first choice we support but do not prefer would have its guess answered
    while it, judging by the same rule as we must, sends the real packet.
    """
    return (
        bool(client.kex)
        and client.kex[:1] == server.kex[:1]
        and bool(client.host_key)
        and client.host_key[:1] == server.host_key[:1]
    )
