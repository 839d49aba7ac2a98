"""Certificates and security-key signatures made by test code, for what ssh-keygen will not make.

:func:`build_certificate` writes an OpenSSH certificate field by field
(PROTOCOL.certkeys), so a test can make one signed by a certificate, with a
SHA-1 CA signature, or with a forged signature. :class:`SoftwareAuthenticator`
signs as a FIDO security key does (PROTOCOL.u2f), flags and counter chosen by
the test. :func:`publickey_login` sends a signed publickey request over a
:class:`~tests.support.rawssh.RawClient`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from spindlex_tw.core import wire
from spindlex_tw.crypto.certificate import USER_CERT
from spindlex_tw.crypto.pkey import PKey, SKECDSAKey, SKEd25519Key
from spindlex_tw.crypto.sk_key import USER_PRESENT, signed_data
from spindlex_tw.protocol import constants as c
from tests.support.rawssh import RawClient


def _pairs(pairs: dict[str, bytes]) -> bytes:
    return b"".join(wire.string(name) + wire.string(value) for name, value in sorted(pairs.items()))


def option_string(value: str) -> bytes:
    """The data of a critical option that holds one string (force-command, source-address)."""
    return wire.string(value)


def build_certificate(
    key: PKey,
    ca: PKey,
    principals: tuple[str, ...] = ("alice",),
    cert_type: int = USER_CERT,
    key_id: str = "test-id",
    serial: int = 1,
    valid_after: int | None = None,
    valid_before: int | None = None,
    critical: dict[str, bytes] | None = None,
    extensions: tuple[str, ...] = ("permit-pty", "permit-port-forwarding"),
    ca_algorithm: str | None = None,
    signature_key_blob: bytes | None = None,
) -> bytes:
    """A certificate blob for ``key``, signed by ``ca`` (with ``ca_algorithm`` if given).

    ``signature_key_blob`` names another key as the signer in the certificate
    (a certificate, say) while ``ca`` still makes the signature.
    """
    now = int(time.time())
    fields = wire.Reader(key.get_public_key_bytes())
    plain = fields.ascii()
    name = plain.removesuffix("@openssh.com") + "-cert-v01@openssh.com"
    body = b"".join(
        (
            wire.string(name),
            wire.string(b"\x01" * 32),
            fields.rest(),
            wire.uint64(serial),
            wire.uint32(cert_type),
            wire.string(key_id),
            wire.string(b"".join(wire.string(p) for p in principals)),
            wire.uint64(now - 60 if valid_after is None else valid_after),
            wire.uint64(now + 3600 if valid_before is None else valid_before),
            wire.string(_pairs(critical or {})),
            wire.string(_pairs(dict.fromkeys(extensions, b""))),
            wire.string(b""),
            wire.string(signature_key_blob or ca.get_public_key_bytes()),
        )
    )
    if ca_algorithm == "ssh-rsa":
        ca.allow_sha1 = True
    return body + wire.string(ca.sign_ssh(body, ca_algorithm))


class SoftwareAuthenticator:
    """A FIDO "device" in software: it signs whatever flags and counter the test asks."""

    def __init__(self, kind: str = "ed25519", application: str = "ssh:") -> None:
        self.application = application
        self.counter = 0
        if kind == "ed25519":
            self._ed = ed25519.Ed25519PrivateKey.generate()
            self.public: PKey = SKEd25519Key(self._ed.public_key(), application)
        else:
            self._ec = ec.generate_private_key(ec.SECP256R1())
            self.public = SKECDSAKey(self._ec.public_key(), application)

    def sign(self, message: bytes, flags: int = USER_PRESENT) -> bytes:
        """The SSH signature blob a device with these ``flags`` would give for ``message``."""
        self.counter += 1
        data = signed_data(self.application, flags, self.counter, message)
        if isinstance(self.public, SKEd25519Key):
            raw = self._ed.sign(data)
        else:
            r, s = decode_dss_signature(self._ec.sign(data, ec.ECDSA(hashes.SHA256())))
            raw = wire.mpint(r) + wire.mpint(s)
        name = self.public.get_name()
        return wire.string(name) + wire.string(raw) + wire.byte(flags) + wire.uint32(self.counter)


def publickey_login(
    client: RawClient, user: str, algorithm: str, blob: bytes, sign: Callable[[bytes], bytes]
) -> int:
    """Handshake, then one signed publickey request; the message type of the answer."""
    client.handshake()
    assert client.request_service()[0] == c.SSH_MSG_SERVICE_ACCEPT
    request = (
        wire.byte(c.SSH_MSG_USERAUTH_REQUEST)
        + wire.string(user)
        + wire.string("ssh-connection")
        + wire.string("publickey")
        + wire.boolean(True)
        + wire.string(algorithm)
        + wire.string(blob)
    )
    assert client.session_id is not None
    signature = sign(wire.string(client.session_id) + request)
    client.send(request + wire.string(signature))
    reply = client.recv_skipping(c.SSH_MSG_USERAUTH_BANNER, c.SSH_MSG_EXT_INFO)
    return reply[0]
