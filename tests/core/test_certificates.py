"""OpenSSH certificates, security keys and KRLs, sans-IO: ssh-keygen's output and our own.

ssh-keygen makes the ordinary certificates and KRLs; tests/support/certs.py
makes what it refuses to (a SHA-1 CA signature, a certificate as the CA, a
forged field) and signs as a FIDO device would.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from spindlex_tw.core import wire
from spindlex_tw.crypto.cert_checks import (
    CertificateRefused,
    check_host_certificate,
    check_user_certificate,
    restrictions,
)
from spindlex_tw.crypto.certificate import HOST_CERT, SSHCertificate, verify_user_signature
from spindlex_tw.crypto.krl import KRL_MAGIC, parse_revoked_keys
from spindlex_tw.crypto.pkey import KeyFormatError, PKey, RSAKey, SecurityKey
from spindlex_tw.crypto.sk_key import USER_PRESENT, USER_VERIFIED
from tests.support.certs import SoftwareAuthenticator, build_certificate, option_string


def keygen(*args: str) -> None:
    subprocess.run(["ssh-keygen", "-q", *args], check=True, timeout=30, capture_output=True)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("certkeys")
    for name, kind in (("ca", "ed25519"), ("rsa_ca", "rsa"), ("ed", "ed25519")):
        keygen("-N", "", "-t", kind, "-f", str(tmp / name))
    for name, kind in (("ecdsa", "ecdsa"), ("rsa", "rsa")):
        keygen("-N", "", "-t", kind, "-f", str(tmp / name))
    return tmp


def sign(keys: Path, key: str, *options: str, ca: str = "ca") -> SSHCertificate:
    keygen("-s", str(keys / ca), "-I", f"{key}-id", *options, str(keys / f"{key}.pub"))
    cert = PKey.from_public_line((keys / f"{key}-cert.pub").read_text())
    assert isinstance(cert, SSHCertificate)
    return cert


@pytest.mark.parametrize("key", ["ed", "ecdsa", "rsa"])
def test_ssh_keygen_certificates_parse(keys: Path, key: str) -> None:
    cert = sign(
        keys, key, "-n", "alice,bob", "-z", "42", "-V", "+1h",
        "-O", "force-command=ls -l", "-O", "source-address=10.0.0.0/8,127.0.0.1",
    )  # fmt: skip
    plain = PKey.from_public_line((keys / f"{key}.pub").read_text())
    assert cert.key == plain and cert.get_name().endswith("-cert-v01@openssh.com")
    assert (cert.key_id, cert.serial, cert.principals) == (f"{key}-id", 42, ("alice", "bob"))
    assert cert.is_user_certificate and cert.valid_before - cert.valid_after > 3000
    assert cert.force_command == "ls -l"
    assert cert.source_addresses == ("10.0.0.0/8", "127.0.0.1")
    assert cert.signature_key == PKey.from_public_line((keys / "ca.pub").read_text())
    assert set(cert.extensions) >= {"permit-pty", "permit-port-forwarding"}
    # The blob round-trips and names its algorithms in the -cert form.
    assert PKey.from_public_blob(cert.get_public_key_bytes()) == cert
    assert all(a.endswith("-cert-v01@openssh.com") for a in cert.host_key_algorithms())


def test_rsa_ca_signs_with_sha2_and_sha1_is_refused(keys: Path) -> None:
    assert sign(keys, "ed", "-n", "alice", ca="rsa_ca").signature_key.get_name() == "ssh-rsa"
    keygen("-s", str(keys / "rsa_ca"), "-I", "x", "-t", "ssh-rsa", str(keys / "ed.pub"))
    with pytest.raises(KeyFormatError, match="CA signature does not verify"):
        PKey.from_public_line((keys / "ed-cert.pub").read_text())


def test_forged_and_chained_certificates_are_refused() -> None:
    ca, user = PKey.generate("ed25519"), PKey.generate("ed25519")
    blob = build_certificate(user.get_public_key(), ca, ("alice",), key_id="honest")
    forged = blob.replace(b"honest", b"forged")
    with pytest.raises(KeyFormatError, match="does not verify"):
        PKey.from_public_blob(forged)
    intermediate = PKey.generate("ed25519")
    as_ca = build_certificate(intermediate.get_public_key(), ca, ("alice",))
    chained = build_certificate(user, intermediate, ("alice",), signature_key_blob=as_ca)
    with pytest.raises(KeyFormatError, match="signed by a certificate"):
        PKey.from_public_blob(chained)
    with pytest.raises(KeyFormatError, match="unknown certificate type"):
        PKey.from_public_blob(build_certificate(user, ca, cert_type=3))
    sha1 = build_certificate(user, RSAKey.generate(bits=2048), ca_algorithm="ssh-rsa")
    with pytest.raises(KeyFormatError):
        PKey.from_public_blob(sha1)


def test_user_certificate_checks() -> None:
    ca, user = PKey.generate("ed25519"), PKey.generate("ed25519")

    def cert(**kwargs: object) -> SSHCertificate:
        parsed = PKey.from_public_blob(build_certificate(user, ca, **kwargs))  # type: ignore[arg-type]
        assert isinstance(parsed, SSHCertificate)
        return parsed

    now = int(time.time())
    assert check_user_certificate(cert(), ("alice",), "127.0.0.1").pty
    refusals = {
        "expired": (cert(valid_before=now - 1), "expired"),
        "early": (cert(valid_after=now + 100), "not yet valid"),
        "host": (cert(cert_type=HOST_CERT), "not a user certificate"),
        "principal": (cert(principals=("bob",)), "no principal"),
        "none": (cert(principals=()), "lacks a principal"),
        "critical": (cert(critical={"frob": b""}), "unsupported critical option 'frob'"),
        "source": (
            cert(critical={"source-address": option_string("10.0.0.0/8")}),
            "source-address does not admit",
        ),
        "bad cidr": (
            cert(critical={"source-address": option_string("127.0.0.1/8")}),
            "source-address",
        ),
    }
    for name, (refused, reason) in refusals.items():
        with pytest.raises(CertificateRefused, match=reason):
            check_user_certificate(refused, ("alice",), "127.0.0.1")
        assert name
    granted = restrictions(cert(extensions=("permit-agent-forwarding",)))
    assert granted.agent_forwarding and not granted.pty and not granted.port_forwarding
    with pytest.raises(CertificateRefused, match="not a host certificate"):
        check_host_certificate(cert())


def test_host_certificate_signs_with_its_key() -> None:
    ca, host = PKey.generate("ed25519"), RSAKey.generate(bits=2048)
    cert = PKey.from_public_blob(build_certificate(host.get_public_key(), ca, cert_type=HOST_CERT))
    assert isinstance(cert, SSHCertificate)
    signing = cert.with_private_key(host)
    assert signing.host_key_algorithms()[0] == "rsa-sha2-512-cert-v01@openssh.com"
    signature = signing.sign_ssh(b"exchange hash", "rsa-sha2-256-cert-v01@openssh.com")
    assert wire.Reader(signature).ascii() == "rsa-sha2-256"  # the key's own algorithm
    assert cert.verify_ssh(b"exchange hash", signature, ["rsa-sha2-256-cert-v01@openssh.com"])
    with pytest.raises(ValueError, match="not for this key"):
        cert.with_private_key(RSAKey.generate(bits=2048))


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa"])
def test_security_key_signatures(kind: str) -> None:
    device = SoftwareAuthenticator(kind)
    key = PKey.from_public_blob(device.public.get_public_key_bytes())
    assert isinstance(key, SecurityKey)
    name = key.get_name()
    touched = device.sign(b"data", USER_PRESENT)
    valid, details = verify_user_signature(key, b"data", touched, name)
    assert valid and details is not None and details.user_present and details.counter == 1
    assert not verify_user_signature(key, b"other", touched, name)[0]
    untouched = device.sign(b"data", 0)
    valid, details = verify_user_signature(key, b"data", untouched, name)
    assert valid and details is not None and not details.user_present
    # Policy: a touch is needed by default; verify-required needs the UV flag too.
    assert key.refusal() == "no security-key signature"
    key.signature = details
    assert "not touched" in str(key.refusal())
    key.touch_required = False
    assert key.refusal() is None
    key.verify_required = True
    assert "did not verify" in str(key.refusal())
    key.signature = verify_user_signature(
        key, b"data", device.sign(b"data", USER_PRESENT | USER_VERIFIED), name
    )[1]
    assert key.refusal() is None
    # Another application is another key: the signature does not carry over.
    other = SoftwareAuthenticator(kind, application="ssh:other")
    assert not verify_user_signature(other.public, b"data", touched, name)[0]


def test_security_key_certificate() -> None:
    ca, device = PKey.generate("ed25519"), SoftwareAuthenticator()
    cert = PKey.from_public_blob(build_certificate(device.public, ca, ("alice",)))
    assert isinstance(cert, SSHCertificate) and cert.security_key is not None
    name = "sk-ssh-ed25519-cert-v01@openssh.com"
    valid, details = verify_user_signature(cert, b"m", device.sign(b"m"), name)
    assert valid and details is not None and details.user_present
    # A certificate offered under its key's plain algorithm is refused.
    assert not verify_user_signature(cert, b"m", device.sign(b"m"), "sk-ssh-ed25519@openssh.com")[0]


def test_krl_from_ssh_keygen(keys: Path) -> None:
    revoked_serial = sign(keys, "ed", "-n", "alice", "-z", "7")
    by_id = sign(keys, "ecdsa", "-n", "alice", "-z", "8")  # key id "ecdsa-id"
    fine = sign(keys, "rsa", "-n", "alice", "-z", "9")
    (keys / "spec").write_text("serial: 5-7\nid: ecdsa-id\n")
    keygen("-k", "-f", str(keys / "krl"), "-s", str(keys / "ca.pub"), str(keys / "spec"))
    revoked = parse_revoked_keys((keys / "krl").read_bytes())
    assert revoked.is_revoked(revoked_serial) and revoked.is_revoked(by_id)
    assert not revoked.is_revoked(fine) and not revoked.is_revoked(fine.key)
    # Plain keys, by blob and by SHA-256 hash; a revoked key revokes its certificates.
    rsa = PKey.from_public_line((keys / "rsa.pub").read_text())
    (keys / "spec2").write_text(f"hash: {rsa.get_fingerprint()}\n")
    keygen("-k", "-u", "-f", str(keys / "krl"), str(keys / "spec2"), str(keys / "ed.pub"))
    revoked = parse_revoked_keys((keys / "krl").read_bytes())
    assert revoked.is_revoked(rsa) and revoked.is_revoked(fine)
    assert revoked.is_revoked(PKey.from_public_line((keys / "ed.pub").read_text()))
    # A revoked CA revokes everything it signed.
    ca_list = parse_revoked_keys((keys / "ca.pub").read_bytes())
    assert ca_list.is_revoked(fine) and not ca_list.is_revoked(rsa)


def test_krl_that_cannot_be_read_whole_is_refused() -> None:
    header = KRL_MAGIC + wire.uint32(1) + wire.uint64(1) * 3 + wire.string(b"") * 2
    assert not parse_revoked_keys(header).blobs
    for section in (
        wire.byte(4) + wire.string(b"k") + wire.string(b"s"),  # a signature
        wire.byte(9) + wire.string(b""),  # unknown
        wire.byte(255) + wire.string(wire.string("x@y") + wire.boolean(True) + wire.string(b"")),
    ):
        with pytest.raises(KeyFormatError):
            parse_revoked_keys(header + section)
    with pytest.raises(KeyFormatError, match="line 2"):
        parse_revoked_keys(b"# comment\nssh-ed25519 AAAA\n")
