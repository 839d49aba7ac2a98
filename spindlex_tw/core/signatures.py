"""Signature algorithms, in server preference order, and what a host key must offer the core.

One list serves both directions: the host-key algorithms we sign with during
key exchange, and the algorithms we accept in a user's publickey signature
(announced as ext-info ``server-sig-algs``). No SHA-1 ``ssh-rsa``.
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


class HostKey(Protocol):
    """A private host key as the transport uses it (``crypto.pkey.PKey`` is one)."""

    def host_key_algorithms(self) -> Sequence[str]: ...

    def get_public_key_bytes(self) -> bytes: ...

    def sign_ssh(self, data: bytes, algorithm: str | None = None) -> bytes: ...
