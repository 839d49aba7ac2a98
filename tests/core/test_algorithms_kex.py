"""Key exchange methods: test-side clients, asyncssh as oracle, known answers, bad input."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from typing import Any

import pytest
from asyncssh.kex import Kex, get_kex
from cryptography.hazmat.primitives.asymmetric import ec, mlkem, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from spindlex_tw.core import wire
from spindlex_tw.core.algorithms.dh_groups import GROUP14, GROUP16, GROUP18, DhGroup
from spindlex_tw.core.algorithms.kex_methods import KEX_METHODS, KexResult, derive_key
from spindlex_tw.core.errors import ProtocolError
from spindlex_tw.protocol.constants import SSH_DISCONNECT_KEY_EXCHANGE_FAILED

# RFC 7748 section 6.1: Alice is our test client, Bob the server.
ALICE_PRIVATE = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
ALICE_PUBLIC = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
BOB_PRIVATE = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
BOB_PUBLIC = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
ALICE_BOB_SHARED = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")

CURVES: dict[str, ec.EllipticCurve] = {
    "ecdh-sha2-nistp256": ec.SECP256R1(),
    "ecdh-sha2-nistp384": ec.SECP384R1(),
    "ecdh-sha2-nistp521": ec.SECP521R1(),
}
GROUPS: dict[str, DhGroup] = {
    "diffie-hellman-group14-sha256": GROUP14,
    "diffie-hellman-group16-sha512": GROUP16,
    "diffie-hellman-group18-sha512": GROUP18,
}
CURVE25519 = ("curve25519-sha256", "curve25519-sha256@libssh.org")
HYBRID = "mlkem768x25519-sha256"
MLKEM_PUBLIC_SIZE = 1184
MLKEM_CIPHERTEXT_SIZE = 1088


def seeded_rng(seed: int) -> Callable[[int], bytes]:
    return random.Random(seed).randbytes


def fixed_rng(value: bytes) -> Callable[[int], bytes]:
    def rng(count: int) -> bytes:
        assert count == len(value)
        return value

    return rng


def reply_value(result: KexResult) -> bytes:
    reader = wire.Reader(result.reply_field)
    value = reader.string()
    reader.done()
    return value


def assert_fails(method: str, init_body: bytes, rng: Callable[[int], bytes] | None = None) -> None:
    with pytest.raises(ProtocolError) as caught:
        KEX_METHODS[method].server_exchange(init_body, rng or seeded_rng(0))
    assert caught.value.reason == SSH_DISCONNECT_KEY_EXCHANGE_FAILED


def test_registry_order_and_hashes() -> None:
    assert [(name, spec.hash_name) for name, spec in KEX_METHODS.items()] == [
        ("mlkem768x25519-sha256", "sha256"),
        ("curve25519-sha256", "sha256"),
        ("curve25519-sha256@libssh.org", "sha256"),
        ("ecdh-sha2-nistp256", "sha256"),
        ("ecdh-sha2-nistp384", "sha384"),
        ("ecdh-sha2-nistp521", "sha512"),
        ("diffie-hellman-group16-sha512", "sha512"),
        ("diffie-hellman-group18-sha512", "sha512"),
        ("diffie-hellman-group14-sha256", "sha256"),
    ]
    for name, spec in KEX_METHODS.items():
        assert spec.name == name
        assert spec.hash(b"abc") == hashlib.new(spec.hash_name, b"abc").digest()


# --- curve25519 ----------------------------------------------------------------


@pytest.mark.parametrize("method", CURVE25519)
def test_curve25519_rfc7748_known_answer(method: str) -> None:
    result = KEX_METHODS[method].server_exchange(wire.string(ALICE_PUBLIC), fixed_rng(BOB_PRIVATE))
    assert result.client_field == wire.string(ALICE_PUBLIC)
    assert result.reply_field == wire.string(BOB_PUBLIC)
    # RFC 8731: the X25519 output read as a big-endian integer, then encoded as an mpint.
    assert result.shared_secret == wire.mpint(int.from_bytes(ALICE_BOB_SHARED, "big"))


def test_x25519_function_vector_of_rfc7748_section_5_2() -> None:
    scalar = bytes.fromhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
    u = bytes.fromhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
    out = bytes.fromhex("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")
    result = KEX_METHODS["curve25519-sha256"].server_exchange(wire.string(u), fixed_rng(scalar))
    assert result.shared_secret == wire.mpint(int.from_bytes(out, "big"))


@pytest.mark.parametrize("method", CURVE25519)
def test_curve25519_with_a_test_client(method: str) -> None:
    client = x25519.X25519PrivateKey.generate()
    q_c = client.public_key().public_bytes_raw()
    result = KEX_METHODS[method].server_exchange(wire.string(q_c), seeded_rng(1))
    q_s = reply_value(result)
    shared = client.exchange(x25519.X25519PublicKey.from_public_bytes(q_s))
    assert result.shared_secret == wire.mpint(int.from_bytes(shared, "big"))


@pytest.mark.parametrize(
    "q_c",
    [
        bytes(32),  # u = 0: every shared secret is zero
        (1).to_bytes(32, "little"),  # u = 1: likewise
        # a point of order 8 on the twist (libsodium's blocklist)
        bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
        bytes(31),
        bytes(33),
        b"",
    ],
)
def test_curve25519_rejects_bad_public_keys(q_c: bytes) -> None:
    assert_fails("curve25519-sha256", wire.string(q_c))


@pytest.mark.parametrize(
    "body",
    [
        wire.string(ALICE_PUBLIC) + b"\x00",  # trailing byte
        wire.string(ALICE_PUBLIC)[:-1],  # truncated
        b"\x00\x00",
        b"",
    ],
)
def test_init_message_must_be_exactly_one_field(body: bytes) -> None:
    assert_fails("curve25519-sha256", body)
    assert_fails("ecdh-sha2-nistp256", body)
    assert_fails("diffie-hellman-group14-sha256", body)
    assert_fails(HYBRID, body)


# --- NIST curves -----------------------------------------------------------------


def _point(key: ec.EllipticCurvePrivateKey, form: PublicFormat) -> bytes:
    return key.public_key().public_bytes(Encoding.X962, form)


@pytest.mark.parametrize("method", list(CURVES))
def test_ecdh_with_a_test_client(method: str) -> None:
    client = ec.generate_private_key(CURVES[method])
    q_c = _point(client, PublicFormat.UncompressedPoint)
    result = KEX_METHODS[method].server_exchange(wire.string(q_c), seeded_rng(2))
    assert result.client_field == wire.string(q_c)
    q_s = reply_value(result)
    assert len(q_s) == len(q_c) and q_s[0] == 4
    peer = ec.EllipticCurvePublicKey.from_encoded_point(CURVES[method], q_s)
    shared = client.exchange(ec.ECDH(), peer)
    assert result.shared_secret == wire.mpint(int.from_bytes(shared, "big"))


@pytest.mark.parametrize("method", list(CURVES))
def test_ecdh_private_key_comes_from_the_rng(method: str) -> None:
    client = ec.generate_private_key(CURVES[method])
    body = wire.string(_point(client, PublicFormat.UncompressedPoint))
    spec = KEX_METHODS[method]
    first = spec.server_exchange(body, seeded_rng(5))
    assert spec.server_exchange(body, seeded_rng(5)) == first
    assert spec.server_exchange(body, seeded_rng(6)).reply_field != first.reply_field


@pytest.mark.parametrize("method", list(CURVES))
def test_ecdh_rejects_bad_points(method: str) -> None:
    client = ec.generate_private_key(CURVES[method])
    good = _point(client, PublicFormat.UncompressedPoint)
    off_curve = good[:-1] + bytes([good[-1] ^ 1])
    compressed = _point(client, PublicFormat.CompressedPoint)
    for q_c in (off_curve, compressed, good[:-1], good + b"\x00", b"\x00", b"", b"\x05" + good[1:]):
        assert_fails(method, wire.string(q_c))


# --- finite-field groups ---------------------------------------------------------


@pytest.mark.parametrize("method", list(GROUPS))
def test_dh_with_a_test_client(method: str) -> None:
    group = GROUPS[method]
    x = random.Random(3).getrandbits(256) | 1 << 255
    e = pow(group.g, x, group.p)
    result = KEX_METHODS[method].server_exchange(wire.mpint(e), seeded_rng(4))
    assert result.client_field == wire.mpint(e)
    f = wire.Reader(result.reply_field).mpint()
    assert 1 < f < group.p - 1
    assert result.reply_field == wire.mpint(f)
    assert result.shared_secret == wire.mpint(pow(f, x, group.p))


def test_dh_private_exponent_comes_from_the_rng_at_the_group_size() -> None:
    drawn: list[int] = []

    def rng(count: int) -> bytes:
        drawn.append(count)
        return bytes(count)  # all zeros: the exponent is just its forced top bit

    e = pow(2, 12345, GROUP16.p)
    result = KEX_METHODS["diffie-hellman-group16-sha512"].server_exchange(wire.mpint(e), rng)
    assert drawn == [GROUP16.exponent_bits // 8]
    x = 1 << (GROUP16.exponent_bits - 1)
    assert result.reply_field == wire.mpint(pow(2, x, GROUP16.p))
    assert GROUP14.exponent_bits >= 2 * 112 and GROUP16.exponent_bits >= 512


@pytest.mark.parametrize("method", list(GROUPS))
def test_dh_rejects_e_out_of_range(method: str) -> None:
    p = GROUPS[method].p
    for e in (0, 1, p - 1, p, p + 1, -2):
        assert_fails(method, wire.mpint(e))


def test_dh_rejects_a_non_minimal_mpint() -> None:
    e = pow(2, 999, GROUP14.p)
    raw = e.to_bytes((e.bit_length() + 8) // 8, "big")
    assert_fails("diffie-hellman-group14-sha256", wire.string(b"\x00" + raw))


def test_rfc3526_primes_match_an_independent_copy() -> None:
    from asyncssh import kex_dh

    assert GROUP14.p == kex_dh._group14_p
    assert GROUP16.p == kex_dh._group16_p
    assert GROUP18.p == kex_dh._group18_p
    for group in (GROUP14, GROUP16, GROUP18):
        assert group.g == 2
        # A safe prime p = 2q + 1 with 2 generating the order-q subgroup: 2^q = 1.
        assert pow(2, (group.p - 1) // 2, group.p) == 1


# --- ML-KEM-768 + X25519 ---------------------------------------------------------

CLIENT_SEED = bytes(range(64))


def _hybrid_client() -> tuple[mlkem.MLKEM768PrivateKey, bytes]:
    kem = mlkem.MLKEM768PrivateKey.from_seed_bytes(CLIENT_SEED)
    return kem, kem.public_key().public_bytes_raw() + ALICE_PUBLIC


def test_hybrid_known_answer() -> None:
    """Everything but ML-KEM's own encapsulation randomness is fixed, so the
    layout and the combiner are checked against RFC 7748's values."""
    kem, c_init = _hybrid_client()
    result = KEX_METHODS[HYBRID].server_exchange(wire.string(c_init), fixed_rng(BOB_PRIVATE))
    assert result.client_field == wire.string(c_init)
    s_reply = reply_value(result)
    assert len(s_reply) == MLKEM_CIPHERTEXT_SIZE + 32
    ciphertext, server_x25519 = s_reply[:MLKEM_CIPHERTEXT_SIZE], s_reply[MLKEM_CIPHERTEXT_SIZE:]
    assert server_x25519 == BOB_PUBLIC
    kem_secret = kem.decapsulate(ciphertext)
    expected = hashlib.sha256(kem_secret + ALICE_BOB_SHARED).digest()
    # K is a 32-byte *string*, not an mpint: no leading-zero games.
    assert result.shared_secret == wire.string(expected)


def test_hybrid_rejects_bad_input() -> None:
    _, c_init = _hybrid_client()
    assert_fails(HYBRID, wire.string(c_init[:-1]))
    assert_fails(HYBRID, wire.string(c_init + b"\x00"))
    assert_fails(HYBRID, wire.string(c_init[MLKEM_PUBLIC_SIZE:]))  # X25519 alone
    # X25519 half that forces a zero shared secret
    assert_fails(HYBRID, wire.string(c_init[:MLKEM_PUBLIC_SIZE] + bytes(32)))
    # An ML-KEM key whose first coefficient is 4095, not reduced modulo q = 3329
    # (FIPS 203 section 7.2 modulus check).
    bad = bytearray(c_init)
    bad[0] = 0xFF
    bad[1] |= 0x0F
    assert_fails(HYBRID, wire.string(bytes(bad)))


# --- asyncssh as client: an independent implementation of every method -----------


class _ClientConn:
    """Just enough of an asyncssh connection for its Kex objects to act as a client."""

    logger: Any = None

    def __init__(self) -> None:
        self.sent: list[tuple[int, tuple[bytes, ...]]] = []

    def is_client(self) -> bool:
        return True

    def is_server(self) -> bool:
        return False

    def send_packet(self, pkttype: int, *args: bytes, handler: object = None) -> None:
        self.sent.append((pkttype, args))


def _asyncssh_client(method: str) -> tuple[Kex, bytes]:
    """asyncssh's client object for ``method`` and the body of its init message."""
    conn = _ClientConn()
    kex: Any = get_kex(conn, method.encode())  # type: ignore[arg-type]
    if method in GROUPS:
        kex._perform_init()
        ((_, (body,)),) = conn.sent
        return kex, body
    return kex, wire.string(kex._client_pub)


@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
@pytest.mark.parametrize("method", list(KEX_METHODS))
def test_asyncssh_client_agrees_on_k(method: str) -> None:
    kex, body = _asyncssh_client(method)
    result = KEX_METHODS[method].server_exchange(body, seeded_rng(8))
    assert result.client_field == body
    held: Any = kex
    if method in GROUPS:
        held._f = wire.Reader(result.reply_field).mpint()
    else:
        held._server_pub = reply_value(result)
    assert held._compute_client_shared() == result.shared_secret


@pytest.mark.parametrize("method", list(KEX_METHODS))
@pytest.mark.parametrize("size", [16, 32, 64, 100, 200])
def test_derive_key_matches_asyncssh(method: str, size: int) -> None:
    spec = KEX_METHODS[method]
    rnd = random.Random(size)
    k = wire.mpint(rnd.getrandbits(2048))
    h = rnd.randbytes(len(spec.hash(b"")))
    session_id = rnd.randbytes(len(h))
    theirs = Kex(method.encode(), _ClientConn(), getattr(hashlib, spec.hash_name))  # type: ignore[arg-type]
    for letter in (b"A", b"B", b"C", b"D", b"E", b"F"):
        ours = derive_key(spec, k, h, letter, session_id, size)
        assert len(ours) == size
        assert ours == theirs.compute_key(k, h, letter, session_id, size)
