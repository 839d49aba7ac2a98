"""zlib@openssh.com: one stream per direction, asyncssh as oracle, bombs and corruption."""

from __future__ import annotations

import random
import zlib

import pytest
from asyncssh.compression import get_compressor, get_decompressor

from spindlex_tw.core.algorithms.compression import (
    COMPRESSIONS,
    Compressor,
    Decompressor,
    make_compressor,
    make_decompressor,
)
from spindlex_tw.core.errors import ProtocolError
from spindlex_tw.protocol.constants import SSH_DISCONNECT_COMPRESSION_ERROR

ZLIB = "zlib@openssh.com"
MAX = 35000


def _payloads() -> list[bytes]:
    rnd = random.Random(3)
    text = rnd.randbytes(600).hex().encode()  # compresses only so far on its own
    return [b"", b"x", text, rnd.randbytes(3000), text, bytes(MAX), text[:17]]


def _ours() -> tuple[Compressor, Decompressor]:
    compressor, decompressor = make_compressor(ZLIB), make_decompressor(ZLIB)
    assert compressor is not None and decompressor is not None
    return compressor, decompressor


def test_registry() -> None:
    assert COMPRESSIONS == ("none", ZLIB)
    assert make_compressor("none") is None
    assert make_decompressor("none") is None
    with pytest.raises(ValueError):
        make_compressor("zlib-ng")


def test_round_trip_across_packets_sharing_one_stream() -> None:
    compressor, decompressor = _ours()
    sizes = []
    for payload in _payloads():
        packet = compressor.compress(payload)
        sizes.append(len(packet))
        assert decompressor.decompress(packet, MAX) == payload
    # The repeated text shrinks to a back-reference the second time: the stream is shared.
    assert sizes[4] < sizes[2] // 4


def test_ours_compress_asyncssh_decompresses() -> None:
    compressor, _ = _ours()
    theirs = get_decompressor(ZLIB.encode())
    assert theirs is not None
    for payload in _payloads():
        assert theirs.decompress(compressor.compress(payload)) == payload


def test_asyncssh_compresses_ours_decompresses() -> None:
    _, decompressor = _ours()
    theirs = get_compressor(ZLIB.encode())
    assert theirs is not None
    for payload in _payloads():
        packet = theirs.compress(payload)
        assert packet is not None
        assert decompressor.decompress(packet, MAX) == payload


def test_payload_of_exactly_the_limit_is_accepted() -> None:
    compressor, decompressor = _ours()
    payload = bytes(range(256)) * 100
    assert decompressor.decompress(compressor.compress(payload), len(payload)) == payload


def test_decompression_bomb_is_refused() -> None:
    compressor, decompressor = _ours()
    bomb = compressor.compress(bytes(10 * 1024 * 1024))
    assert len(bomb) < 20000  # small on the wire, huge once inflated
    with pytest.raises(ProtocolError) as caught:
        decompressor.decompress(bomb, MAX)
    assert caught.value.reason == SSH_DISCONNECT_COMPRESSION_ERROR


def test_one_byte_over_the_limit_is_refused() -> None:
    compressor, decompressor = _ours()
    with pytest.raises(ProtocolError) as caught:
        decompressor.decompress(compressor.compress(bytes(101)), 100)
    assert caught.value.reason == SSH_DISCONNECT_COMPRESSION_ERROR


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xff\xff\xff not zlib at all",
        zlib.compress(b"a finished stream"),  # SSH streams never end
    ],
)
def test_corrupt_or_finished_stream_is_refused(data: bytes) -> None:
    _, decompressor = _ours()
    with pytest.raises(ProtocolError) as caught:
        decompressor.decompress(data, MAX)
    assert caught.value.reason == SSH_DISCONNECT_COMPRESSION_ERROR
