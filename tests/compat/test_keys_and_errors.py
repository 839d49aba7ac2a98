"""SpindleX's key and exception behaviour, where the surface listing cannot see it.

The listing holds names and signatures; these hold what they do: generate()'s
defaults per class, the in-place loaders, the RSA type name, the version, and
errors that are both SpindleX's class and the builtin spindlex_tw raised.
"""

from __future__ import annotations

import importlib.metadata
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import spindlex_tw
from spindlex_tw.crypto.pkey import ECDSAKey, Ed25519Key, KeyFileError, PKey, RSAKey
from spindlex_tw.exceptions import (
    CryptoException,
    SFTPError,
    SSHException,
    TransportException,
)
from spindlex_tw.protocol.sftp_constants import SSH_FX_NO_SUCH_FILE, SSH_FX_QUOTA_EXCEEDED
from spindlex_tw.server import SSHServer
from spindlex_tw.server.manager import ServerStartError


def test_generate_defaults_are_spindlex_s() -> None:
    assert type(PKey.generate()) is Ed25519Key
    rsa = PKey.generate(key_type="rsa")
    assert type(rsa) is RSAKey and rsa.get_bits() == 2048
    assert RSAKey.generate().get_bits() == 2048
    assert PKey.generate(key_type="rsa", bits=3072).get_bits() == 3072
    assert ECDSAKey.generate().get_name() == "ecdsa-sha2-nistp256"
    assert Ed25519Key.generate().get_bits() == 256


def test_type_names_as_spindlex_returns_them() -> None:
    rsa = RSAKey.generate()
    assert rsa.get_ssh_type() == rsa.algorithm_name == "rsa-sha2-256"
    assert rsa.get_name() == "ssh-rsa"  # the key type, on the wire and in files
    ed = Ed25519Key.generate()
    assert ed.get_ssh_type() == ed.algorithm_name == "ssh-ed25519"


def test_filename_keywords_and_in_place_loading(tmp_path: Path) -> None:
    key = Ed25519Key.generate()
    path = tmp_path / "id"
    key.save_to_file(filename=str(path), password="pw")
    assert PKey.from_private_key_file(filename=str(path), password="pw") == key
    other = Ed25519Key.generate()
    other.load_private_key(path.read_bytes(), b"pw")
    assert other == key and other.can_sign()
    public_only = Ed25519Key.generate()
    public_only.load_public_key(key.get_public_key_bytes())
    assert public_only == key and not public_only.can_sign()
    with pytest.raises(CryptoException):
        RSAKey.generate().load_public_key(key.get_public_key_bytes())  # another type


def test_bad_key_file_is_not_called_a_host_key(tmp_path: Path) -> None:
    path = tmp_path / "client_key"
    path.write_text("garbage\n")
    with pytest.raises(SSHException) as info:
        PKey.from_private_key_file(filename=str(path))
    assert isinstance(info.value, KeyFileError)
    assert str(info.value) == f"cannot load key {path}: not a private key"


def test_version_is_the_distribution_s() -> None:
    assert spindlex_tw.__version__ == importlib.metadata.version("spindlex_tw")


def test_start_server_without_key_is_both_exceptions() -> None:
    with socket.socket() as sock, pytest.raises(TransportException) as info:
        SSHServer().start_server(sock)
    assert isinstance(info.value, ValueError)


def test_server_start_error_is_both_exceptions() -> None:
    error = ServerStartError("cannot listen on 127.0.0.1:22: address in use")
    assert isinstance(error, TransportException) and isinstance(error, RuntimeError)
    assert str(error) == error.message == "cannot listen on 127.0.0.1:22: address in use"


def test_sftp_error_from_status() -> None:
    error = SFTPError.from_status(SSH_FX_NO_SUCH_FILE, filename="/gone")
    assert (error.status_code, error.sftp_code, error.filename) == (2, 2, "/gone")
    assert error.message == "No such file: /gone" and str(error) == "[2] No such file: /gone"
    assert SFTPError.from_status(SSH_FX_QUOTA_EXCEEDED).message == "Quota exceeded"
    plain = SFTPError()  # what the engine raises: FAILURE, and its text
    assert (plain.status_code, plain.message) == (4, "Failure")
    assert isinstance(plain, SSHException)


def test_server_package_imports_lazily() -> None:
    code = (
        "import sys, spindlex_tw.server, spindlex_tw.exceptions;"
        "import spindlex_tw.protocol.sftp_constants;"
        "assert 'twisted' not in sys.modules, 'twisted imported';"
        "from spindlex_tw.server import SSHServer, SSHServerManager, SFTPServer;"
        "assert 'twisted' in sys.modules"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
