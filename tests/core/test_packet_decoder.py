"""PacketDecoder reads packets in place and carries only one cut by the end of a read.

Whatever the cipher and wherever the reads end (inside a length field, a
MAC, between packets), the payloads come out whole and in order, and a
tampered byte never yields a payload: the property tests cut the same stream at
random places.
"""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from spindlex_tw.core.algorithms.ciphers import CIPHERS, make_opener, make_sealer
from spindlex_tw.core.algorithms.macs import MACS
from spindlex_tw.core.errors import ProtocolError
from spindlex_tw.core.packet import PacketDecoder, PacketEncoder

# Each protection the decoder meets: the AEADs, AES-CTR with an EtM and a plain MAC, none.
PROTECTIONS = [
    ("none", None),
    ("chacha20-poly1305@openssh.com", None),
    ("aes128-gcm@openssh.com", None),
    ("aes128-ctr", "hmac-sha2-256-etm@openssh.com"),
    ("aes128-ctr", "hmac-sha2-256"),
]

# Channel data (94, read in place) and other messages (copied out), of every size class.
payloads = st.lists(
    st.tuples(st.sampled_from([94, 95, 2, 80]), st.binary(min_size=0, max_size=40_000)),
    min_size=1,
    max_size=6,
)


def _pair(cipher: str, mac: str | None) -> tuple[PacketEncoder, PacketDecoder]:
    key = os.urandom(CIPHERS[cipher].key_size) if cipher != "none" else b""
    iv = os.urandom(CIPHERS[cipher].iv_size) if cipher != "none" else b""
    mac_key = os.urandom(MACS[mac].key_size) if mac else b""
    encoder = PacketEncoder(os.urandom)
    decoder = PacketDecoder(1 << 20, 1 << 20)
    if cipher != "none":
        encoder.set_protection(make_sealer(cipher, mac, key, iv, mac_key))
        decoder.set_protection(make_opener(cipher, mac, key, iv, mac_key))
    return encoder, decoder


def _decode(decoder: PacketDecoder, stream: bytes, cuts: list[int]) -> list[bytes]:
    out: list[bytes] = []
    start = 0
    for cut in [*sorted(set(cuts)), len(stream)]:
        decoder.feed(stream[start:cut])
        start = cut
        while (payload := decoder.next_payload()) is not None:
            out.append(bytes(payload))
    return out


# The protection is drawn, not parametrized: pytest-twisted wraps a @given test's
# inner function once per collected item, and parametrized items share it.
@given(protection=st.sampled_from(PROTECTIONS), messages=payloads, data=st.data())
def test_payloads_come_out_whole_wherever_reads_end(
    protection: tuple[str, str | None], messages: list[tuple[int, bytes]], data: st.DataObject
) -> None:
    encoder, decoder = _pair(*protection)
    sent = [bytes([kind]) + body for kind, body in messages]
    stream = b"".join(bytes(encoder.encode(payload)) for payload in sent)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
    assert _decode(decoder, stream, cuts) == sent
    assert decoder.buffered() == 0


@given(protection=st.sampled_from(PROTECTIONS[1:]), data=st.data())
def test_a_tampered_byte_never_yields_a_payload_wherever_reads_end(
    protection: tuple[str, str | None], data: st.DataObject
) -> None:
    encoder, decoder = _pair(*protection)
    sent = [b"\x5e" + bytes(size) for size in (100, 5000)]
    stream = bytearray(b"".join(encoder.encode(payload) for payload in sent))
    stream[data.draw(st.integers(0, len(stream) - 1))] ^= 0x01
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=6))
    try:
        out = _decode(decoder, bytes(stream), cuts)
    except ProtocolError:
        return
    # A changed length field can make a packet look longer than what came: the
    # decoder then waits for more (until the connection's timeouts end it), but
    # it never hands on a payload that is not what was sent.
    assert out == sent[: len(out)] and len(out) < len(sent) and decoder.buffered() > 0
