"""Packet protection: round trips, asyncssh as an independent oracle, tampering, fuzzing."""

from __future__ import annotations

import random
import struct

import pytest
from asyncssh.encryption import Encryption, get_encryption
from hypothesis import given
from hypothesis import strategies as st

from spindlex_tw.core.algorithms.ciphers import (
    CIPHERS,
    Opener,
    Sealer,
    make_opener,
    make_sealer,
)
from spindlex_tw.core.algorithms.macs import MACS
from spindlex_tw.core.errors import MacError, ProtocolError

_U32 = struct.Struct(">I")
_WRAP = 1 << 32

# Every cipher with every MAC; an AEAD ignores the MAC, so it is also tried with none.
COMBINATIONS = [(cipher, mac) for cipher in CIPHERS for mac in MACS] + [
    (cipher, None) for cipher, spec in CIPHERS.items() if spec.aead
]


def _ids(combination: tuple[str, str | None]) -> str:
    return f"{combination[0]}+{combination[1]}"


class Keys:
    """Key material of the right sizes for one direction, reproducible from a seed."""

    def __init__(self, cipher: str, mac: str | None, seed: int = 1) -> None:
        rnd = random.Random(seed)
        spec = CIPHERS[cipher]
        self.cipher = cipher
        self.mac = mac
        self.key = rnd.randbytes(spec.key_size)
        self.iv = rnd.randbytes(spec.iv_size)
        self.mac_key = b"" if spec.aead or mac is None else rnd.randbytes(MACS[mac].key_size)

    def sealer(self) -> Sealer:
        return make_sealer(self.cipher, self.mac, self.key, self.iv, self.mac_key)

    def opener(self) -> Opener:
        return make_opener(self.cipher, self.mac, self.key, self.iv, self.mac_key)

    def theirs(self) -> Encryption:
        etm = self.mac is not None and MACS[self.mac].etm
        mac_name = b"" if CIPHERS[self.cipher].aead or self.mac is None else self.mac.encode()
        return get_encryption(self.cipher.encode(), self.key, self.iv, mac_name, self.mac_key, etm)


def frame(payload: bytes, block: int, length_excluded: bool, rnd: random.Random) -> bytes:
    """A cleartext packet padded the way RFC 4253 section 6 asks."""
    unpadded = 1 + len(payload) + (0 if length_excluded else 4)
    padding = block - unpadded % block
    if padding < 4:
        padding += block
    return (
        _U32.pack(1 + len(payload) + padding) + bytes([padding]) + payload + rnd.randbytes(padding)
    )


def open_packet(opener: Opener, seq: int, stream: bytes) -> bytes:
    """What the packet layer does: learn the length, then hand over exactly one packet."""
    view = memoryview(stream)
    length = opener.length(seq, view[: opener.first_size])
    total = 4 + length + opener.tag_size
    if total > len(stream):
        raise ProtocolError(f"bad packet length {length}")
    return opener.open(seq, view[:total])


def payloads(rnd: random.Random) -> list[bytes]:
    sizes = (1, 7, 15, 16, 17, 100, 1000, 32768)
    return [rnd.randbytes(size) for size in sizes]


SEQUENCE = [0, 1, 2, 1000, _WRAP - 2, _WRAP - 1, 0, 1]


@pytest.mark.parametrize("combination", COMBINATIONS, ids=_ids)
def test_round_trip_over_a_run_of_packets(combination: tuple[str, str | None]) -> None:
    keys = Keys(*combination)
    sealer, opener = keys.sealer(), keys.opener()
    rnd = random.Random(7)
    for seq, payload in zip(SEQUENCE, payloads(rnd), strict=True):
        packet = frame(payload, sealer.block_size, sealer.length_excluded, rnd)
        wire = sealer.seal(seq, packet)
        assert len(wire) == len(packet) + opener.tag_size
        assert open_packet(opener, seq, wire) == packet[4:]


@pytest.mark.parametrize("combination", COMBINATIONS, ids=_ids)
def test_sequence_numbers_wrap_at_two_to_the_32(combination: tuple[str, str | None]) -> None:
    keys = Keys(*combination)
    packet = frame(b"wrap", 16, False, random.Random(3))
    assert keys.sealer().seal(_WRAP + 5, packet) == keys.sealer().seal(5, packet)


@pytest.mark.parametrize("combination", COMBINATIONS, ids=_ids)
def test_ours_seal_asyncssh_opens(combination: tuple[str, str | None]) -> None:
    keys = Keys(*combination)
    sealer, theirs = keys.sealer(), keys.theirs()
    rnd = random.Random(11)
    for seq, payload in zip(SEQUENCE, payloads(rnd), strict=True):
        packet = frame(payload, sealer.block_size, sealer.length_excluded, rnd)
        wire = sealer.seal(seq, packet)
        # A chacha packet can be shorter than 16 bytes, so split where our opener would.
        split = keys.opener().first_size
        first, header = theirs.decrypt_header(seq, wire[:split], 4)
        end = 4 + int.from_bytes(header, "big")
        assert end == len(packet)
        body = theirs.decrypt_packet(seq, first, wire[split:end], 4, wire[end:])
        assert body == packet[4:]


@pytest.mark.parametrize("combination", COMBINATIONS, ids=_ids)
def test_asyncssh_seals_ours_opens(combination: tuple[str, str | None]) -> None:
    keys = Keys(*combination)
    opener, theirs = keys.opener(), keys.theirs()
    sealer = keys.sealer()  # only for its padding rules
    rnd = random.Random(13)
    for seq, payload in zip(SEQUENCE, payloads(rnd), strict=True):
        packet = frame(payload, sealer.block_size, sealer.length_excluded, rnd)
        ciphertext, tag = theirs.encrypt_packet(seq, packet[:4], packet[4:])
        assert open_packet(opener, seq, ciphertext + tag) == packet[4:]


def _sealed(combination: tuple[str, str | None], seq: int) -> tuple[Keys, bytes, bytes]:
    keys = Keys(*combination)
    sealer = keys.sealer()
    packet = frame(
        b"tamper with me" * 3, sealer.block_size, sealer.length_excluded, random.Random(5)
    )
    return keys, packet, sealer.seal(seq, packet)


@pytest.mark.parametrize("combination", COMBINATIONS, ids=_ids)
def test_any_tampered_byte_fails_the_mac(combination: tuple[str, str | None]) -> None:
    keys, _, wire = _sealed(combination, 9)
    # Trailing bytes stand in for the next packets in the stream, so a tampered
    # length that grew a little still finds enough data to be checked.
    tail = random.Random(2).randbytes(1024)
    # Bytes 0 and 1 of the length: a change there makes a length the packet
    # layer rejects before any MAC is computed (covered below).
    for position in range(2, len(wire)):
        tampered = bytearray(wire)
        tampered[position] ^= 0x01
        with pytest.raises(MacError):
            open_packet(keys.opener(), 9, bytes(tampered) + tail)


@pytest.mark.parametrize("combination", COMBINATIONS, ids=_ids)
def test_tampering_the_high_length_bytes_never_yields_the_packet(
    combination: tuple[str, str | None],
) -> None:
    keys, _, wire = _sealed(combination, 9)
    for position in (0, 1):
        tampered = bytearray(wire)
        tampered[position] ^= 0x01
        with pytest.raises(ProtocolError):
            open_packet(keys.opener(), 9, bytes(tampered))


@pytest.mark.parametrize("combination", COMBINATIONS, ids=_ids)
def test_wrong_sequence_number_fails(combination: tuple[str, str | None]) -> None:
    keys, packet, wire = _sealed(combination, 9)
    if keys.cipher.endswith("-gcm@openssh.com"):
        # GCM ignores the sequence number: its nonce counts packets itself.
        # The equivalent fault is a lost packet, which desynchronises the nonce.
        sealer = keys.sealer()
        sealer.seal(9, packet)
        with pytest.raises(MacError):
            open_packet(keys.opener(), 10, sealer.seal(10, packet))
        return
    tail = random.Random(4).randbytes(1024)
    with pytest.raises(ProtocolError):
        open_packet(keys.opener(), 10, wire + tail)
    if not keys.cipher.startswith("chacha"):
        # The length does not depend on the sequence number here, so the MAC must catch it.
        with pytest.raises(MacError):
            open_packet(keys.opener(), 10, wire)


def test_chacha_wrong_sequence_number_fails_the_tag() -> None:
    keys, _, wire = _sealed(("chacha20-poly1305@openssh.com", None), 9)
    opener = keys.opener()
    view = memoryview(wire)
    opener.length(9, view[:4])  # length with the right number, tag with a wrong one
    with pytest.raises(MacError):
        opener.open(10, view)


def test_cleartext_protection_before_newkeys() -> None:
    sealer = make_sealer("none", None, b"", b"", b"")
    opener = make_opener("none", None, b"", b"", b"")
    assert (sealer.block_size, sealer.length_excluded) == (8, False)
    assert (opener.block_size, opener.first_size, opener.tag_size) == (8, 4, 0)
    packet = frame(b"hello", 8, False, random.Random(1))
    assert sealer.seal(3, packet) == packet
    assert open_packet(opener, 3, packet) == packet[4:]


@pytest.mark.parametrize(
    ("cipher", "mac", "key", "iv"),
    [
        ("aes128-ctr", None, bytes(16), bytes(16)),
        ("aes128-ctr", "hmac-sha1", bytes(16), bytes(16)),
        ("aes128-ctr", "hmac-sha2-256", bytes(15), bytes(16)),
        ("aes256-gcm@openssh.com", None, bytes(32), bytes(16)),
        ("3des-cbc", "hmac-sha2-256", bytes(24), bytes(8)),
    ],
)
def test_factories_refuse_wrong_names_and_sizes(
    cipher: str, mac: str | None, key: bytes, iv: bytes
) -> None:
    with pytest.raises(ValueError):
        make_sealer(cipher, mac, key, iv, bytes(32))
    with pytest.raises(ValueError):
        make_opener(cipher, mac, key, iv, bytes(32))


def test_registry_order_and_parameters() -> None:
    assert list(CIPHERS) == [
        "chacha20-poly1305@openssh.com",
        "aes128-gcm@openssh.com",
        "aes256-gcm@openssh.com",
        "aes128-ctr",
        "aes192-ctr",
        "aes256-ctr",
    ]
    assert list(MACS) == [
        "hmac-sha2-256-etm@openssh.com",
        "hmac-sha2-512-etm@openssh.com",
        "hmac-sha2-256",
        "hmac-sha2-512",
    ]
    for name, spec in CIPHERS.items():
        sealer = Keys(name, "hmac-sha2-256").sealer()
        assert sealer.block_size == spec.block_size
        assert sealer.length_excluded == spec.aead
    for name, mac in MACS.items():
        assert Keys("aes128-ctr", name).sealer().length_excluded == mac.etm
        assert Keys("aes128-ctr", name).opener().tag_size == mac.digest_size
        assert Keys("aes128-ctr", name).opener().first_size == (4 if mac.etm else 16)


@given(
    index=st.integers(0, len(COMBINATIONS) - 1),
    seq=st.integers(0, _WRAP - 1),
    first=st.binary(min_size=16, max_size=16),
    rest=st.binary(max_size=300),
    honest_length=st.booleans(),
)
def test_random_bytes_raise_only_protocol_errors(
    index: int, seq: int, first: bytes, rest: bytes, honest_length: bool
) -> None:
    opener = Keys(*COMBINATIONS[index]).opener()
    data = first + rest
    if honest_length and len(data) >= 4 + opener.tag_size:
        # A length field that matches the data, so open() gets to the MAC or tag.
        data = _U32.pack(len(data) - 4 - opener.tag_size) + data[4:]
    view = memoryview(data)
    try:
        length = opener.length(seq, view[: opener.first_size])
        opener.open(seq, view[: 4 + length + opener.tag_size])
    except ProtocolError:
        pass
    else:
        pytest.fail("random bytes opened as a packet")
