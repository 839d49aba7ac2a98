"""Key classes: blobs, fingerprints, SSH signatures, formats, errors.

Signatures are checked against ``cryptography`` directly and against
paramiko's key classes (a test-only oracle); saved files are re-read by
paramiko and asyncssh too.  Keys are generated once per module because RSA
generation is slow.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path

import asyncssh
import paramiko
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from spindlex_tw.core.wire import Reader, mpint, string
from spindlex_tw.crypto.pkey import (
    ECDSAKey,
    Ed25519Key,
    KeyFileError,
    KeyFormatError,
    KeyPassphraseError,
    PKey,
    RSAKey,
    load_key_from_file,
    load_public_key_from_string,
)

PASSPHRASE = "correct horse battery"
DATA = b"exchange hash or userauth data"
FORMATS = ("openssh", "pem", "pkcs8")
KEY_IDS = ("ed25519", "rsa", "nistp256", "nistp384", "nistp521")


@pytest.fixture(scope="module")
def keys() -> dict[str, PKey]:
    return {
        "ed25519": Ed25519Key.generate(),
        "rsa": RSAKey.generate(),  # the default size, 2048 as SpindleX
        "nistp256": ECDSAKey.generate(),
        "nistp384": ECDSAKey.generate(curve="nistp384"),
        "nistp521": ECDSAKey.generate(bits=521),
    }


@pytest.fixture(params=KEY_IDS)
def key(request: pytest.FixtureRequest, keys: dict[str, PKey]) -> PKey:
    return keys[request.param]


# -- an independent verifier: cryptography on the raw blob ---------------


def _crypto_verify(blob: bytes, data: bytes, signature_blob: bytes) -> None:
    """Verify with cryptography alone, parsing the SSH encodings by hand."""
    key_reader = Reader(blob)
    key_type = key_reader.ascii()
    sig_reader = Reader(signature_blob)
    algorithm = sig_reader.ascii()
    signature = sig_reader.string()
    if key_type == "ssh-ed25519":
        ed25519.Ed25519PublicKey.from_public_bytes(key_reader.string()).verify(signature, data)
    elif key_type == "ssh-rsa":
        e, n = key_reader.mpint(), key_reader.mpint()
        digest = {
            "rsa-sha2-256": hashes.SHA256(),
            "rsa-sha2-512": hashes.SHA512(),
            "ssh-rsa": hashes.SHA1(),
        }[algorithm]
        rsa.RSAPublicNumbers(e, n).public_key().verify(signature, data, padding.PKCS1v15(), digest)
    else:
        curve_name = key_reader.ascii()
        curve, digest = {
            "nistp256": (ec.SECP256R1(), hashes.SHA256()),
            "nistp384": (ec.SECP384R1(), hashes.SHA384()),
            "nistp521": (ec.SECP521R1(), hashes.SHA512()),
        }[curve_name]
        public = ec.EllipticCurvePublicKey.from_encoded_point(curve, key_reader.string())
        inner = Reader(signature)
        der = encode_dss_signature(inner.mpint(), inner.mpint())
        public.verify(der, data, ec.ECDSA(digest))


# -- identity -------------------------------------------------------------


def test_names_bits_and_algorithms(keys: dict[str, PKey]) -> None:
    expected = {
        "ed25519": ("ssh-ed25519", 256, ["ssh-ed25519"]),
        "rsa": ("ssh-rsa", 2048, ["rsa-sha2-512", "rsa-sha2-256"]),
        "nistp256": ("ecdsa-sha2-nistp256", 256, ["ecdsa-sha2-nistp256"]),
        "nistp384": ("ecdsa-sha2-nistp384", 384, ["ecdsa-sha2-nistp384"]),
        "nistp521": ("ecdsa-sha2-nistp521", 521, ["ecdsa-sha2-nistp521"]),
    }
    for key_id, (name, bits, algorithms) in expected.items():
        key = keys[key_id]
        assert (key.get_name(), key.get_bits(), key.host_key_algorithms()) == (
            name,
            bits,
            algorithms,
        )
        assert key.can_sign()
        # SpindleX names an RSA key by its signature algorithm, the others by their type.
        ssh_type = "rsa-sha2-256" if key_id == "rsa" else name
        assert key.get_ssh_type() == key.algorithm_name == ssh_type


def test_public_blob_layout(key: PKey) -> None:
    blob = key.get_public_key_bytes()
    reader = Reader(blob)
    assert reader.ascii() == key.get_name()
    if isinstance(key, Ed25519Key):
        assert len(reader.string()) == 32
    elif isinstance(key, RSAKey):
        assert reader.mpint() == 65537
        assert reader.mpint().bit_length() == key.get_bits()
    else:
        assert isinstance(key, ECDSAKey)
        assert reader.ascii() == key.curve_name
        assert reader.string()[:1] == b"\x04"
    reader.done()
    assert base64.b64decode(key.get_base64()) == blob


def test_fingerprints_follow_openssh(key: PKey) -> None:
    blob = key.get_public_key_bytes()
    sha = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    assert key.get_fingerprint() == "SHA256:" + sha
    md5 = hashlib.md5(blob).hexdigest()
    assert key.get_fingerprint("md5") == "MD5:" + ":".join(md5[i : i + 2] for i in range(0, 32, 2))
    with pytest.raises(ValueError):
        key.get_fingerprint("sha1")


def test_equality_and_hash_follow_the_public_blob(key: PKey, keys: dict[str, PKey]) -> None:
    public = key.get_public_key()
    assert not public.can_sign()
    assert public == key and hash(public) == hash(key)
    assert PKey.from_public_blob(key.get_public_key_bytes()) == key
    assert {key, public} == {key}
    assert all(other != key for other in keys.values() if other is not key)
    assert key != key.get_public_key_bytes()
    assert "private" in repr(key) and "public" in repr(public)


def test_public_lines(key: PKey) -> None:
    key.comment = "alice@example"
    line = key.get_public_line()
    assert line == f"{key.get_name()} {key.get_base64()} alice@example"
    loaded = PKey.from_public_line(line + "\n")
    assert loaded == key and type(loaded) is type(key)
    assert loaded.comment == "alice@example" and not loaded.can_sign()
    assert PKey.from_public_line(key.get_openssh_string()).comment == ""
    assert PKey.from_public_line(f"{line} with spaces").comment == "alice@example with spaces"
    assert load_public_key_from_string(line) == key
    key.comment = ""
    assert key.get_public_line() == key.get_openssh_string()


@pytest.mark.parametrize(
    "line",
    [
        "",
        "ssh-ed25519",
        "ssh-ed25519 !!!notbase64!!!",
        "ssh-ed25519 AAAA",
        'from="10.0.0.1" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==',
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOlémt",
    ],
)
def test_bad_public_lines(line: str) -> None:
    with pytest.raises(KeyFormatError):
        PKey.from_public_line(line)


def test_public_line_type_must_match_blob(keys: dict[str, PKey]) -> None:
    line = "ssh-rsa " + keys["ed25519"].get_base64()
    with pytest.raises(KeyFormatError, match="ssh-ed25519"):
        PKey.from_public_line(line)


def test_subclass_loaders_insist_on_their_type(keys: dict[str, PKey]) -> None:
    ed_blob = keys["ed25519"].get_public_key_bytes()
    assert isinstance(Ed25519Key.from_public_blob(ed_blob), Ed25519Key)
    assert Ed25519Key.from_string(ed_blob) == keys["ed25519"]
    with pytest.raises(KeyFormatError):
        RSAKey.from_public_blob(ed_blob)
    pem = keys["nistp384"].get_private_bytes(format="pkcs8")
    assert isinstance(ECDSAKey.from_private_key(pem), ECDSAKey)
    with pytest.raises(KeyFormatError):
        Ed25519Key.from_private_key(pem)


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        string("ssh-dss") + string(b"x"),
        string("ssh-ed25519") + string(bytes(31)),
        string("ssh-ed25519") + string(bytes(32)) + b"trailing",
        string("ssh-rsa") + mpint(65537) + mpint((1 << 1023) + 1)[:-1],
        string("ssh-rsa") + mpint(65537) + mpint((1 << 511) + 1),  # too small
        string("ssh-rsa") + mpint(-65537) + mpint((1 << 2047) + 1),
        string("ssh-rsa") + mpint(65537) + string(b"\x00\x00" + bytes(255) + b"\x01"),
        string("ecdsa-sha2-nistp256") + string("nistp384") + string(b"\x04" + bytes(64)),
        string("ecdsa-sha2-nistp256") + string("nistp256") + string(b"\x04" + bytes(64)),
        string("ecdsa-sha2-nistp224") + string("nistp224") + string(b"\x04" + bytes(56)),
    ],
)
def test_bad_public_blobs(blob: bytes) -> None:
    with pytest.raises(KeyFormatError):
        PKey.from_public_blob(blob)


def test_compressed_ecdsa_points_are_refused(keys: dict[str, PKey]) -> None:
    key = keys["nistp256"]
    assert isinstance(key, ECDSAKey)
    public = key._public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
    with pytest.raises(KeyFormatError, match="uncompressed"):
        PKey.from_public_blob(string(key.get_name()) + string("nistp256") + string(public))


def test_non_canonical_mpint_is_refused(keys: dict[str, PKey]) -> None:
    key = keys["rsa"]
    assert isinstance(key, RSAKey)
    numbers = key._numbers
    padded_e = string(b"\x00" + mpint(numbers.e)[4:])
    with pytest.raises(KeyFormatError, match="non-canonical"):
        PKey.from_public_blob(string("ssh-rsa") + padded_e + mpint(numbers.n))


# -- signatures -----------------------------------------------------------


def test_signatures_verify_everywhere(key: PKey) -> None:
    oracle = paramiko.PKey.from_type_string(key.get_name(), key.get_public_key_bytes())
    public = key.get_public_key()
    for algorithm in key.host_key_algorithms():
        blob = key.sign_ssh(DATA, algorithm)
        reader = Reader(blob)
        assert reader.ascii() == algorithm
        reader.string()
        reader.done()
        _crypto_verify(key.get_public_key_bytes(), DATA, blob)
        assert oracle.verify_ssh_sig(DATA, paramiko.Message(blob))
        assert public.verify_ssh(DATA, blob)
        assert key.verify_ssh(DATA, blob, algorithms=[algorithm])
    assert Reader(key.sign_ssh(DATA)).ascii() == key.host_key_algorithms()[0]
    assert key.verify(key.sign(DATA), DATA)


def test_rsa_signature_blob_sizes(keys: dict[str, PKey]) -> None:
    key = keys["rsa"]
    for algorithm in ("rsa-sha2-256", "rsa-sha2-512"):
        reader = Reader(key.sign_ssh(DATA, algorithm))
        reader.ascii()
        assert len(reader.string()) == key.get_bits() // 8


def test_ed25519_signature_is_raw_64_bytes(keys: dict[str, PKey]) -> None:
    reader = Reader(keys["ed25519"].sign_ssh(DATA))
    assert reader.ascii() == "ssh-ed25519"
    assert len(reader.string()) == 64


def test_signatures_from_paramiko_verify(tmp_path: Path, key: PKey) -> None:
    path = tmp_path / "key"
    # paramiko mis-strips an unpadded private section that ends in an empty
    # comment (it slices data[:-0]); OpenSSH writes such files too, so give
    # the key a comment rather than change the format.
    key.comment = "signer"
    key.save_to_file(path)
    key.comment = ""
    signer = paramiko.PKey.from_path(str(path))
    for algorithm in key.host_key_algorithms():
        message = signer.sign_ssh_data(DATA, algorithm if isinstance(key, RSAKey) else None)
        assert key.verify_ssh(DATA, message.asbytes())


def test_tampering_is_detected(key: PKey) -> None:
    blob = key.sign_ssh(DATA)
    assert not key.verify_ssh(DATA + b"!", blob)
    assert not key.verify_ssh(DATA[:-1], blob)
    for position in (len(blob) - 1, len(blob) - 20, 30):
        tampered = bytearray(blob)
        tampered[position] ^= 0x01
        assert not key.verify_ssh(DATA, bytes(tampered))
    assert not key.verify_ssh(DATA, blob + b"\x00")


def test_truncated_blobs_are_false(key: PKey) -> None:
    blob = key.sign_ssh(DATA)
    assert not any(key.verify_ssh(DATA, blob[:cut]) for cut in range(len(blob)))


def test_signature_from_another_key_is_false(keys: dict[str, PKey]) -> None:
    for signer in keys.values():
        for verifier in keys.values():
            if verifier is not signer:
                assert not verifier.verify_ssh(DATA, signer.sign_ssh(DATA))


def test_algorithm_must_match_the_key(keys: dict[str, PKey]) -> None:
    rsa_key, ed_key, p256 = keys["rsa"], keys["ed25519"], keys["nistp256"]
    sha256 = rsa_key.sign_ssh(DATA, "rsa-sha2-256")
    reader = Reader(sha256)
    reader.ascii()
    raw = reader.string()
    # Same bytes under another RSA name: the hash differs, so it must fail.
    assert not rsa_key.verify_ssh(DATA, string("rsa-sha2-512") + string(raw))
    # The list of acceptable algorithms is honoured.
    assert not rsa_key.verify_ssh(DATA, sha256, algorithms=["rsa-sha2-512"])
    assert not rsa_key.verify_ssh(DATA, sha256, algorithms=[])
    assert rsa_key.verify_ssh(DATA, sha256, algorithms=("rsa-sha2-256", "ssh-ed25519"))
    assert rsa_key.verify_ssh(DATA, sha256, algorithms="rsa-sha2-256")
    # An Ed25519 signature relabelled as ECDSA, and vice versa.
    ed_raw = Reader(ed_key.sign_ssh(DATA))
    ed_raw.ascii()
    assert not p256.verify_ssh(DATA, string("ecdsa-sha2-nistp256") + string(ed_raw.string()))
    p384_blob = keys["nistp384"].sign_ssh(DATA)
    assert not keys["nistp384"].verify_ssh(DATA, p384_blob, algorithms=["ecdsa-sha2-nistp256"])


def test_sha1_rsa_only_when_asked(keys: dict[str, PKey]) -> None:
    key = RSAKey.from_private_key(keys["rsa"].get_private_bytes())
    with pytest.raises(ValueError):
        key.sign_ssh(DATA, "ssh-rsa")
    key.allow_sha1 = True
    legacy = key.sign_ssh(DATA, "ssh-rsa")
    _crypto_verify(key.get_public_key_bytes(), DATA, legacy)  # paramiko 5 dropped SHA-1
    assert key.verify_ssh(DATA, legacy)
    key.allow_sha1 = False
    assert not key.verify_ssh(DATA, legacy)
    assert key.verify_ssh(DATA, legacy, algorithms=["ssh-rsa", "rsa-sha2-256"])
    assert key.host_key_algorithms() == ["rsa-sha2-512", "rsa-sha2-256"]


def test_rsa_signature_without_leading_zero_is_accepted(keys: dict[str, PKey]) -> None:
    key = keys["rsa"]
    for counter in range(4096):
        data = DATA + counter.to_bytes(2, "big")
        reader = Reader(key.sign_ssh(data, "rsa-sha2-256"))
        reader.ascii()
        raw = reader.string()
        if raw[0] == 0:
            break
    else:
        pytest.fail("no RSA signature with a leading zero octet in 4096 tries")
    assert key.verify_ssh(data, string("rsa-sha2-256") + string(raw[1:]))
    assert not key.verify_ssh(data, string("rsa-sha2-256") + string(b"\x00" + raw))


def test_ecdsa_signature_numbers_must_be_positive(keys: dict[str, PKey]) -> None:
    key = keys["nistp256"]
    reader = Reader(key.sign_ssh(DATA))
    reader.ascii()
    inner = Reader(reader.string())
    r, s = inner.mpint(), inner.mpint()
    name = key.get_name()
    assert key.verify_ssh(DATA, string(name) + string(mpint(r) + mpint(s)))
    assert not key.verify_ssh(DATA, string(name) + string(mpint(-r) + mpint(s)))
    assert not key.verify_ssh(DATA, string(name) + string(mpint(r) + mpint(0)))
    assert not key.verify_ssh(DATA, string(name) + string(mpint(r) + mpint(s) + b"x"))


def test_sign_refuses_what_it_cannot_do(key: PKey) -> None:
    with pytest.raises(ValueError):
        key.sign_ssh(DATA, "ssh-dss")
    with pytest.raises(ValueError):
        key.get_public_key().sign_ssh(DATA)
    with pytest.raises(ValueError):
        key.get_public_key().get_private_bytes()


# -- private key formats ---------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("password", [None, PASSPHRASE], ids=["clear", "encrypted"])
def test_private_bytes_round_trip(key: PKey, fmt: str, password: str | None) -> None:
    key.comment = "round trip"
    data = key.get_private_bytes(password, fmt)  # type: ignore[arg-type]
    loaded = PKey.from_private_key(data, password)
    assert loaded == key and type(loaded) is type(key) and loaded.can_sign()
    assert loaded.verify_ssh(DATA, key.sign_ssh(DATA))
    assert key.verify_ssh(DATA, loaded.sign_ssh(DATA))
    assert loaded.comment == ("round trip" if fmt == "openssh" else "")
    assert PKey.from_private_key(data.decode("ascii"), password) == key
    if password:
        with pytest.raises(KeyPassphraseError, match="passphrase required"):
            PKey.from_private_key(data)
        with pytest.raises(KeyPassphraseError, match="wrong passphrase"):
            PKey.from_private_key(data, "not it")
    else:
        # A passphrase offered for a clear key is ignored, as by ssh-keygen.
        assert PKey.from_private_key(data, "unused") == key
    key.comment = ""


def test_written_formats_look_like_the_tools(keys: dict[str, PKey]) -> None:
    first_lines = {
        ("ed25519", "openssh"): b"-----BEGIN OPENSSH PRIVATE KEY-----",
        ("ed25519", "pem"): b"-----BEGIN PRIVATE KEY-----",
        ("rsa", "pem"): b"-----BEGIN RSA PRIVATE KEY-----",
        ("nistp256", "pem"): b"-----BEGIN EC PRIVATE KEY-----",
        ("nistp256", "pkcs8"): b"-----BEGIN PRIVATE KEY-----",
    }
    for (key_id, fmt), first in first_lines.items():
        data = keys[key_id].get_private_bytes(None, fmt)  # type: ignore[arg-type]
        assert data.splitlines()[0] == first
    encrypted = keys["nistp256"].get_private_bytes(PASSPHRASE, "pkcs8")
    assert encrypted.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    traditional = keys["rsa"].get_private_bytes(PASSPHRASE, "pem")
    assert b"Proc-Type: 4,ENCRYPTED" in traditional


def test_openssh_writer_matches_ssh_keygen_parameters(keys: dict[str, PKey]) -> None:
    data = keys["ed25519"].get_private_bytes(PASSPHRASE)
    lines = data.decode().splitlines()
    assert max(len(line) for line in lines[1:-1]) == 70
    raw = base64.b64decode("".join(lines[1:-1]))
    reader = Reader(raw, len(b"openssh-key-v1\x00"))
    assert (reader.ascii(), reader.ascii()) == ("aes256-ctr", "bcrypt")
    options = Reader(reader.string())
    assert len(options.string()) == 16 and options.uint32() == 16
    clear = keys["ed25519"].get_private_bytes()
    reader = Reader(base64.b64decode("".join(clear.decode().splitlines()[1:-1])), 15)
    assert (reader.ascii(), reader.ascii(), reader.string()) == ("none", "none", b"")


@pytest.mark.parametrize("fmt", FORMATS)
def test_other_implementations_read_our_files(tmp_path: Path, key: PKey, fmt: str) -> None:
    data = key.get_private_bytes(PASSPHRASE, fmt)  # type: ignore[arg-type]
    imported = asyncssh.import_private_key(data, PASSPHRASE)
    assert imported.public_data == key.get_public_key_bytes()
    # paramiko reads OpenSSH and traditional PEM files, not PKCS#8 ones (and
    # Ed25519 has no traditional PEM form).
    if fmt == "openssh" or (fmt == "pem" and not isinstance(key, Ed25519Key)):
        path = tmp_path / "key"
        path.write_bytes(data)
        oracle = paramiko.PKey.from_path(str(path), PASSPHRASE.encode())
        assert oracle.asbytes() == key.get_public_key_bytes()


def test_crypto_objects_wrap_directly() -> None:
    private = ec.generate_private_key(ec.SECP384R1())
    key = ECDSAKey(private, comment="wrapped")
    assert key.get_name() == "ecdsa-sha2-nistp384" and key.comment == "wrapped"
    assert ECDSAKey(private.public_key()) == key
    with pytest.raises(KeyFormatError, match="curve"):
        ECDSAKey(ec.generate_private_key(ec.SECP256K1()))
    with pytest.raises(KeyFormatError, match="bits"):
        RSAKey(_small_rsa_public())


def _small_rsa_public() -> rsa.RSAPublicKey:
    # A 768-bit modulus: too small for OpenSSH, built from numbers to skip keygen.
    p = (1 << 383) + 187
    q = (1 << 383) + 231
    return rsa.RSAPublicNumbers(65537, p * q).public_key()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a private key"),
        (b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA== c", "not a private key"),
        (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "not a private key"),
        (b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n", "truncated"),
        (b"-----BEGIN OPENSSH PRIVATE KEY-----\nAA!A\n-----END OPENSSH PRIVATE KEY-----", "armor"),
        (
            b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----",
            "openssh-key-v1",
        ),
        (b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----", "malformed"),
    ],
)
def test_bad_private_data(data: bytes, message: str) -> None:
    with pytest.raises(KeyFormatError, match=message) as caught:
        PKey.from_private_key(data)
    assert not isinstance(caught.value, KeyPassphraseError)


def test_unsupported_private_key_types() -> None:
    from cryptography.hazmat.primitives.asymmetric import dsa, x25519

    for private in (dsa.generate_private_key(1024), x25519.X25519PrivateKey.generate()):
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        with pytest.raises(KeyFormatError, match="unsupported"):
            PKey.from_private_key(pem)


def test_leading_text_before_the_block_is_skipped(keys: dict[str, PKey]) -> None:
    data = b"Bag Attributes\n    localKeyID: 01\n" + keys["rsa"].get_private_bytes(None, "pkcs8")
    assert PKey.from_private_key(data) == keys["rsa"]


def test_openssh_consistency_checks(keys: dict[str, PKey]) -> None:
    key, other = keys["ed25519"], Ed25519Key.generate()
    text = key.get_private_bytes()
    lines = text.decode().splitlines()
    raw = bytearray(base64.b64decode("".join(lines[1:-1])))

    def armored(body: bytes) -> bytes:
        encoded = base64.b64encode(body).decode()
        return f"{lines[0]}\n{encoded}\n{lines[-1]}\n".encode()

    # Replace the outer public key with another key's: must not load.
    public_offset = raw.index(key.get_public_key_bytes())
    swapped = bytearray(raw)
    swapped[public_offset : public_offset + 51] = other.get_public_key_bytes()
    with pytest.raises(KeyFormatError, match="differ"):
        PKey.from_private_key(armored(bytes(swapped)))
    # Break the padding at the very end.
    padded = bytearray(raw)
    padded[-1] ^= 0xFF
    with pytest.raises(KeyFormatError):
        PKey.from_private_key(armored(bytes(padded)))
    # Break one check integer.
    checked = bytearray(raw)
    checked[raw.index(key.get_public_key_bytes()) + 51 + 4] ^= 0x01
    with pytest.raises(KeyFormatError, match="check"):
        PKey.from_private_key(armored(bytes(checked)))


def test_absurd_bcrypt_rounds_are_refused_without_running(keys: dict[str, PKey]) -> None:
    lines = keys["ed25519"].get_private_bytes(PASSPHRASE).decode().splitlines()
    raw = base64.b64decode("".join(lines[1:-1]))
    options_at = raw.index(b"bcrypt") + len(b"bcrypt") + 4 + 4 + 16
    assert raw[options_at : options_at + 4] == b"\x00\x00\x00\x10"
    hostile = raw[:options_at] + b"\xff\xff\xff\xff" + raw[options_at + 4 :]
    armored = f"{lines[0]}\n{base64.b64encode(hostile).decode()}\n{lines[-1]}\n"
    with pytest.raises(KeyFormatError, match="rounds"):
        PKey.from_private_key(armored, PASSPHRASE)


# -- files ----------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_save_to_file_is_private_and_reloads(tmp_path: Path, key: PKey, fmt: str) -> None:
    path = tmp_path / "host_key"
    path.write_text("old contents")
    path.chmod(0o644)
    key.save_to_file(path, PASSPHRASE, fmt)  # type: ignore[arg-type]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["host_key"]
    assert PKey.from_private_key_file(path, PASSPHRASE) == key
    assert load_key_from_file(str(path), PASSPHRASE.encode()) == key


def test_save_without_passphrase_and_plain_filename(
    tmp_path: Path, keys: dict[str, PKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    keys["nistp256"].save_to_file("plain")
    assert stat.S_IMODE(os.stat("plain").st_mode) == 0o600
    assert PKey.from_private_key_file("plain") == keys["nistp256"]


def test_save_rejects_bad_arguments_before_touching_disk(
    tmp_path: Path, keys: dict[str, PKey]
) -> None:
    key = keys["ed25519"]
    with pytest.raises(ValueError, match="format"):
        key.save_to_file(tmp_path / "x", format="der")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        key.get_public_key().save_to_file(tmp_path / "x")
    assert list(tmp_path.iterdir()) == []


def test_save_errors_are_one_line(tmp_path: Path, keys: dict[str, PKey]) -> None:
    target = tmp_path / "missing" / "key"
    with pytest.raises(KeyFileError) as caught:
        keys["ed25519"].save_to_file(target)
    assert str(caught.value) == f"cannot save key {target}: no such file"


def _load_error(path: Path | str, password: str | None = None) -> KeyFileError:
    with pytest.raises(KeyFileError) as caught:
        PKey.from_private_key_file(path, password)
    assert "\n" not in str(caught.value)
    return caught.value


def test_load_errors_name_the_file_and_reason(tmp_path: Path, keys: dict[str, PKey]) -> None:
    missing = tmp_path / "nope"
    assert str(_load_error(missing)) == f"cannot load key {missing}: no such file"
    assert str(_load_error(tmp_path)).endswith(": is a directory")
    public = tmp_path / "key.pub"
    public.write_text(keys["ed25519"].get_public_line() + "\n")
    assert str(_load_error(public)) == f"cannot load key {public}: not a private key"
    encrypted = tmp_path / "enc"
    encrypted.write_bytes(keys["ed25519"].get_private_bytes(PASSPHRASE))
    error = _load_error(encrypted)
    assert str(error) == f"cannot load key {encrypted}: passphrase required"
    assert error.needs_passphrase and isinstance(error.__cause__, KeyPassphraseError)
    assert str(_load_error(encrypted, "wrong")).endswith(": wrong passphrase")
    big = tmp_path / "big"
    big.write_bytes(b"x" * ((1 << 20) + 1))
    assert str(_load_error(big)).endswith(": file too large for a key")
    odd = tmp_path / "new\nline"
    assert str(_load_error(odd)).startswith(f"cannot load key {tmp_path}/new\\nline:")
    assert not _load_error(missing).needs_passphrase


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path, keys: dict[str, PKey]) -> None:
    path = tmp_path / "key"
    keys["ed25519"].save_to_file(path)
    path.chmod(0)
    assert str(_load_error(path)).endswith(": permission denied")


# -- generation -----------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: PKey.generate(), "ssh-ed25519"),
        (lambda: PKey.generate("ed25519"), "ssh-ed25519"),
        (lambda: PKey.generate("rsa", bits=1024), "ssh-rsa"),
        (lambda: PKey.generate("ecdsa", bits=384), "ecdsa-sha2-nistp384"),
        (lambda: PKey.generate("ECDSA"), "ecdsa-sha2-nistp256"),
        (lambda: ECDSAKey.generate(curve="ecdsa-sha2-nistp521"), "ecdsa-sha2-nistp521"),
        (lambda: ECDSAKey.generate(curve="nistp384", bits=384), "ecdsa-sha2-nistp384"),
        (lambda: RSAKey.generate("rsa", 1024), "ssh-rsa"),
        (lambda: Ed25519Key.generate(bits=256), "ssh-ed25519"),
    ],
)
def test_generate_variants(make: Callable[[], PKey], name: str) -> None:
    key = make()
    assert key.get_name() == name and key.can_sign()
    assert key.verify_ssh(DATA, key.sign_ssh(DATA))


@pytest.mark.parametrize(
    "make",
    [
        lambda: PKey.generate("dsa"),
        lambda: Ed25519Key.generate("rsa"),
        lambda: Ed25519Key.generate(bits=2048),
        lambda: RSAKey.generate(bits=512),
        lambda: RSAKey.generate(curve="nistp256"),
        lambda: ECDSAKey.generate(curve="nistp224"),
        lambda: ECDSAKey.generate(bits=255),
        lambda: ECDSAKey.generate(curve="nistp256", bits=384),
    ],
)
def test_generate_rejects_bad_arguments(make: Callable[[], PKey]) -> None:
    with pytest.raises(ValueError):
        make()


def test_user_subclasses_do_not_hijack_loading(keys: dict[str, PKey]) -> None:
    class Labelled(Ed25519Key):
        pass

    assert type(PKey.from_public_blob(keys["ed25519"].get_public_key_bytes())) is Ed25519Key
    assert type(PKey.generate("ed25519")) is Ed25519Key
    assert type(Labelled.generate()) is Labelled


def test_password_may_be_bytes(keys: dict[str, PKey]) -> None:
    data = keys["nistp521"].get_private_bytes(PASSPHRASE.encode())
    assert PKey.from_private_key(data, PASSPHRASE) == keys["nistp521"]
