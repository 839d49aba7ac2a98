"""--auth password sources: bcrypt and SHA-crypt files, memory entries, refusal of plain text."""

from __future__ import annotations

import os
import random
import shutil
import string
import subprocess
import warnings
from pathlib import Path

import bcrypt
import pytest

from spindlex_tw.twistd.credentials import (
    CredentialsError,
    FilePasswords,
    MemoryPasswords,
    Passwords,
    hash_password,
    parse_auth_spec,
)

# Cheap bcrypt hashes keep the suite fast; the cost does not change the code path.
FAST = bcrypt.hashpw(b"bcrypt-secret", bcrypt.gensalt(4)).decode()


# Drepper's reference vectors of SHA-crypt, and hashes made by libc and by openssl.
SHA256_VECTOR = "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"
SHA512_VECTOR = (
    "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0"
    "Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."
)


def _checks(tmp_path: Path, stored: str, password: str) -> bool:
    source = FilePasswords(str(_write(tmp_path, f"u:{stored}\n")))
    return source.check("u", password)


def test_sha_crypt_reference_vectors(tmp_path: Path) -> None:
    for stored in (SHA256_VECTOR, SHA512_VECTOR):
        assert _checks(tmp_path, stored, "Hello world!")
        assert not _checks(tmp_path, stored, "Hello world")


def test_sha_crypt_agrees_with_libc(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        crypt = pytest.importorskip("crypt")
    rng = random.Random(7)
    for _ in range(10):
        letters = string.ascii_letters + " !#%"
        password = "".join(rng.choice(letters) for _ in range(rng.randint(1, 40)))
        salt = "".join(rng.choice(string.ascii_letters + "./") for _ in range(rng.randint(1, 16)))
        for setting in (f"$6${salt}", f"$5$rounds={rng.randint(1000, 2000)}${salt}"):
            made = crypt.crypt(password, setting)
            assert _checks(tmp_path, made, password)
            assert not _checks(tmp_path, made, password + "x")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_sha_crypt_agrees_with_openssl_passwd(tmp_path: Path) -> None:
    made = subprocess.run(
        ["openssl", "passwd", "-6", "-salt", "pepper", "open sesame"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert _checks(tmp_path, made, "open sesame")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "passwd"
    path.write_text(text)
    return path


def test_file_with_bcrypt_and_sha_crypt(tmp_path: Path) -> None:
    # openssl passwd -6 -salt abcdefgh sha-secret
    sha = (
        "$6$abcdefgh$ad4hbUWEy58iOLSsprlOMCzlvGssu/FxY/phM9RWhufxtgLDAdPEbpZaBSC3bCS/OWQOFV0nbqg"
        "ckc3HEupvU0"
    )
    path = _write(tmp_path, f"# users\n\nalice:{FAST}\nbob:{sha}:19000:0:99999:7:::\n")
    source = FilePasswords(str(path))
    assert source.users() == {"alice", "bob"}
    assert source.check("alice", "bcrypt-secret")
    assert not source.check("alice", "sha-secret")
    assert source.check("bob", "sha-secret")
    assert not source.check("bob", "")
    assert not source.check("carol", "bcrypt-secret")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("alice:secret\n", "line 1: the password of 'alice' is not a bcrypt or SHA-crypt hash"),
        (f"alice:{FAST}\nbob:$1$md5$oldhash\n", "line 2"),
        ("alice\n", "line 1: expected user:hash"),
        (f"alice:{FAST}\nalice:{FAST}\n", "'alice' is listed twice"),
        ("alice:$2b$04$short\n", "not a bcrypt or SHA-crypt hash"),
    ],
)
def test_bad_file_is_one_line_naming_it(tmp_path: Path, text: str, reason: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(CredentialsError) as caught:
        FilePasswords(str(path))
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message and reason in message


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match=r"cannot read password file .*: no such file"):
        parse_auth_spec(f"file:{tmp_path / 'missing'}")


def test_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = _write(tmp_path, f"alice:{FAST}\n")
    source = FilePasswords(str(path))
    assert source.check("alice", "bcrypt-secret")
    other = bcrypt.hashpw(b"new", bcrypt.gensalt(4)).decode()
    path.write_text(f"alice:{other}\n")
    os.utime(path, ns=(1, 1))
    assert source.check("alice", "new")
    # Turned invalid while running: the users read before keep working until it is fixed.
    path.write_text("alice:plain\n")
    os.utime(path, ns=(2, 2))
    assert source.check("alice", "new")
    assert not source.check("alice", "plain")
    with pytest.raises(CredentialsError, match="plain text is refused"):
        source.reload()
    assert source.check("alice", "new")
    path.write_text(f"alice:{FAST}\n")
    os.utime(path, ns=(3, 3))
    assert source.check("alice", "bcrypt-secret")


def test_memory_spec_and_combined_sources(tmp_path: Path) -> None:
    memory = parse_auth_spec("memory:alice:pa:ss")
    assert isinstance(memory, MemoryPasswords)
    assert memory.check("alice", "pa:ss")
    assert not memory.check("alice", "pa")
    assert not memory.check("bob", "pa:ss")
    combined = Passwords([memory, FilePasswords(str(_write(tmp_path, f"bob:{FAST}\n")))])
    assert combined.check("alice", "pa:ss") and combined.check("bob", "bcrypt-secret")
    assert not combined.check("bob", "pa:ss")
    assert bool(combined) and not Passwords()


@pytest.mark.parametrize("spec", ["memory:alice", "memory::x", "memory:alice:", "ldap:x", "file:"])
def test_bad_auth_specs(spec: str) -> None:
    with pytest.raises(CredentialsError) as caught:
        parse_auth_spec(spec)
    assert "\n" not in str(caught.value)


def test_hash_password_makes_usable_lines(tmp_path: Path) -> None:
    line = f"carol:{hash_password('long password ' * 10)}\n"
    source = FilePasswords(str(_write(tmp_path, line)))
    assert source.check("carol", "long password " * 10)
