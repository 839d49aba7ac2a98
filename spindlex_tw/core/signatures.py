"""Signature algorithms, in server preference order, and what a host key must offer the core.

The plain list serves both directions: the host-key algorithms we sign with
during key exchange, and the algorithms we accept in a user's publickey
signature (announced as ext-info ``server-sig-algs``). No SHA-1 ``ssh-rsa``.
OpenSSH certificates add their ``-cert-v01@openssh.com`` forms to both, and
users may also sign with security keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

SIGNATURE_ALGORITHMS = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
)

# Security-key user keys (OpenSSH PROTOCOL.u2f): users sign with them, hosts never do.
SECURITY_KEY_ALGORITHMS = (
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)


def _cert(name: str) -> str:
    return name.removesuffix("@openssh.com") + "-cert-v01@openssh.com"


# OpenSSH certificates (PROTOCOL.certkeys) under each algorithm, preferred as sshd does.
CERTIFICATE_ALGORITHMS = tuple(_cert(n) for n in SIGNATURE_ALGORITHMS + SECURITY_KEY_ALGORITHMS)

#: What a host may sign the key exchange with: its certificates first, then plain keys.
HOST_KEY_ALGORITHMS = tuple(_cert(n) for n in SIGNATURE_ALGORITHMS) + SIGNATURE_ALGORITHMS

#: What a user may log in with (ext-info ``server-sig-algs``).
USER_KEY_ALGORITHMS = SIGNATURE_ALGORITHMS + SECURITY_KEY_ALGORITHMS + CERTIFICATE_ALGORITHMS


class HostKey(Protocol):
    """A private host key as the transport uses it (``crypto.pkey.PKey`` is one)."""

    def host_key_algorithms(self) -> Sequence[str]: ...

    def get_public_key_bytes(self) -> bytes: ...

    def sign_ssh(self, data: bytes, algorithm: str | None = None) -> bytes: ...
