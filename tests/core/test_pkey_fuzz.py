"""Property tests: hostile key data raises KeyFormatError and nothing else.

Peer-supplied blobs (public keys, signatures) and local files alike: random
bytes, random bodies inside valid armor, and single-byte mutations or
truncations of real keys.
"""

from __future__ import annotations

import base64
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spindlex_tw.core.wire import mpint, string
from spindlex_tw.crypto.pkey import ECDSAKey, Ed25519Key, KeyFormatError, PKey, RSAKey

KEY_NAMES = [
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
]
# The example count comes from the hypothesis profile (tests/conftest.py).
FUZZ = settings(suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def keys() -> list[PKey]:
    return [
        Ed25519Key.generate(),
        RSAKey.generate(bits=1024),
        ECDSAKey.generate(curve="nistp256"),
        ECDSAKey.generate(curve="nistp521"),
    ]


def _public_or_format_error(blob: bytes) -> None:
    try:
        key = PKey.from_public_blob(blob)
    except KeyFormatError:
        return
    # Whatever is accepted round-trips exactly.
    assert key.get_public_key_bytes() == blob


@given(st.binary(max_size=600))
@FUZZ
def test_public_blob_random_bytes(blob: bytes) -> None:
    _public_or_format_error(blob)


@given(st.sampled_from(KEY_NAMES), st.lists(st.binary(max_size=140), max_size=4))
@FUZZ
def test_public_blob_plausible_fields(name: str, fields: list[bytes]) -> None:
    _public_or_format_error(string(name) + b"".join(string(field) for field in fields))


@given(
    st.integers(min_value=-(1 << 2100), max_value=1 << 2100),
    st.integers(min_value=-(1 << 2100), max_value=1 << 2100),
)
@FUZZ
def test_public_blob_random_rsa_numbers(e: int, n: int) -> None:
    _public_or_format_error(string("ssh-rsa") + mpint(e) + mpint(n))


@given(st.binary(max_size=2000))
@FUZZ
def test_private_key_random_bytes(data: bytes) -> None:
    with pytest.raises(KeyFormatError):
        PKey.from_private_key(data)


@given(
    st.sampled_from(
        [
            "OPENSSH PRIVATE KEY",
            "RSA PRIVATE KEY",
            "EC PRIVATE KEY",
            "PRIVATE KEY",
            "ENCRYPTED PRIVATE KEY",
            "DSA PRIVATE KEY",
        ]
    ),
    st.binary(max_size=1200),
    st.sampled_from([None, "pass phrase"]),
)
@FUZZ
def test_private_key_random_armored_body(label: str, body: bytes, password: str | None) -> None:
    text = base64.encodebytes(body).decode()
    data = f"-----BEGIN {label}-----\n{text}-----END {label}-----\n"
    with pytest.raises(KeyFormatError):
        PKey.from_private_key(data, password)


def _mutations(data: bytes, start: int = 0) -> st.SearchStrategy[bytes]:
    flip = st.tuples(st.integers(start, len(data) - 1), st.integers(1, 255)).map(
        lambda change: (
            data[: change[0]] + bytes([data[change[0]] ^ change[1]]) + data[change[0] + 1 :]
        )
    )
    cut = st.integers(start, len(data) - 1).map(lambda length: data[:length])
    return st.one_of(flip, cut)


def _raw_body(armored: bytes) -> tuple[list[str], bytes]:
    lines = armored.decode().splitlines()
    return lines, base64.b64decode("".join(lines[1:-1]))


@given(st.data())
@FUZZ
def test_private_key_mutated_openssh_body(keys: list[PKey], data: st.DataObject) -> None:
    key = data.draw(st.sampled_from(keys))
    key.comment = "fuzz"
    lines, raw = _raw_body(key.get_private_bytes())
    mutated = data.draw(_mutations(raw))
    armored = f"{lines[0]}\n{base64.b64encode(mutated).decode()}\n{lines[-1]}\n"
    try:
        loaded = PKey.from_private_key(armored)
    except KeyFormatError:
        return
    # A change the format cannot detect (the comment, a check integer pair)
    # still yields the same key.
    assert loaded == key


@given(st.data())
@FUZZ
def test_private_key_mutated_pem_body(keys: list[PKey], data: st.DataObject) -> None:
    key = data.draw(st.sampled_from(keys))
    fmt = data.draw(st.sampled_from(["pem", "pkcs8"]))
    lines, raw = _raw_body(key.get_private_bytes(None, fmt))  # type: ignore[arg-type]
    mutated = data.draw(_mutations(raw))
    armored = f"{lines[0]}\n{base64.b64encode(mutated).decode()}\n{lines[-1]}\n"
    try:
        loaded = PKey.from_private_key(armored)
    except KeyFormatError:
        return
    assert loaded.can_sign()


@pytest.fixture(scope="module")
def encrypted_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, PKey]:
    """An ed25519 key file encrypted by ssh-keygen with a single bcrypt round.

    One round keeps each example as cheap as the other property tests, so the
    profile's example count can govern this test too; the rounds field itself
    is left alone by the mutations (a large count is legitimately slow).
    """
    path = tmp_path_factory.mktemp("encrypted-key") / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-a", "1", "-N", "pass phrase", "-f", str(path)],
        check=True,
    )
    armored = path.read_bytes()
    return armored, PKey.from_private_key(armored.decode(), "pass phrase")


@given(st.data())
@FUZZ
def test_private_key_mutated_encrypted_openssh_body(
    encrypted_key: tuple[bytes, PKey], data: st.DataObject
) -> None:
    # The encrypted section after the public key is mutated.
    armored, key = encrypted_key
    lines, raw = _raw_body(armored)
    section = raw.index(key.get_public_key_bytes()) + len(key.get_public_key_bytes())
    mutated = data.draw(_mutations(raw, section))
    armored_mutation = f"{lines[0]}\n{base64.b64encode(mutated).decode()}\n{lines[-1]}\n"
    try:
        loaded = PKey.from_private_key(armored_mutation, "pass phrase")
    except KeyFormatError:
        return
    assert loaded == key


@given(st.binary(max_size=300), st.binary(max_size=64))
@FUZZ
def test_verify_never_raises(keys: list[PKey], blob: bytes, message: bytes) -> None:
    for key in keys:
        assert key.verify_ssh(message, blob) is False


@given(st.data())
@FUZZ
def test_verify_plausible_blobs(keys: list[PKey], data: st.DataObject) -> None:
    key = data.draw(st.sampled_from(keys))
    name = data.draw(st.sampled_from([*key.host_key_algorithms(), "ssh-rsa", "x"]))
    inner = data.draw(
        st.one_of(
            st.binary(max_size=300),
            st.tuples(st.integers(-(1 << 530), 1 << 530), st.integers(-(1 << 530), 1 << 530)).map(
                lambda rs: mpint(rs[0]) + mpint(rs[1])
            ),
        )
    )
    assert key.verify_ssh(b"message", string(name) + string(inner)) is False
