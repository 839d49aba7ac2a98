"""Is a certificate good for this login (or this host) now? OpenSSH's rules, sans-IO.

:func:`check_user_certificate` refuses, with the reason OpenSSH's sshd would
log, a certificate that is not a user certificate, is outside its validity
window, lacks a principal the caller accepts, has a critical option this
server does not understand, or whose ``source-address`` does not admit the
client. :func:`restrictions` turns what it grants into the per-login
permissions an authorized_keys line would give (``permit-pty`` and so on:
a certificate grants only the extensions it lists).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Collection
from dataclasses import dataclass

from spindlex_tw.crypto.certificate import HOST_CERT, USER_CERT, SSHCertificate

#: The critical options this server enforces; any other refuses the certificate.
KNOWN_CRITICAL_OPTIONS = frozenset({"force-command", "source-address", "verify-required"})


class CertificateRefused(ValueError):
    """The certificate cannot be used; ``str()`` is the reason, one line."""


@dataclass(frozen=True)
class CertificateRestrictions:
    """What a user certificate allows, in the terms of authorized_keys options."""

    force_command: str | None
    source_addresses: tuple[str, ...] | None
    pty: bool
    port_forwarding: bool
    agent_forwarding: bool
    x11_forwarding: bool
    user_rc: bool
    no_touch_required: bool
    verify_required: bool


def restrictions(cert: SSHCertificate) -> CertificateRestrictions:
    ext = cert.extensions
    return CertificateRestrictions(
        force_command=cert.force_command,
        source_addresses=cert.source_addresses,
        pty="permit-pty" in ext,
        port_forwarding="permit-port-forwarding" in ext,
        agent_forwarding="permit-agent-forwarding" in ext,
        x11_forwarding="permit-X11-forwarding" in ext,
        user_rc="permit-user-rc" in ext,
        no_touch_required="no-touch-required" in ext,
        verify_required="verify-required" in cert.critical_options,
    )


def peer_ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """A peer's address as OpenSSH compares it, or None if it is not an IP address.

    The scope (``%eth0``) is dropped and an IPv4-mapped IPv6 address counts as
    its IPv4 form, as for certificate source-address and authorized_keys from=.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def address_in_cidr_list(address: str, cidrs: Collection[str]) -> bool:
    """OpenSSH's addr_match_cidr_list: a malformed entry matches nothing and refuses."""
    ip = peer_ip(address)
    if ip is None:
        return False
    networks = []
    for text in cidrs:
        try:
            networks.append(ipaddress.ip_network(text, strict=True))
        except ValueError:
            return False  # as sshd: a bad list admits no one
    return any(ip in network for network in networks)


def check_validity(cert: SSHCertificate, kind: int, now: float | None = None) -> None:
    """Type and validity window (``valid_after <= now < valid_before``)."""
    if cert.cert_type != kind:
        wanted = "user" if kind == USER_CERT else "host"
        raise CertificateRefused(f"not a {wanted} certificate")
    moment = int(time.time() if now is None else now)
    if moment < cert.valid_after:
        raise CertificateRefused("certificate is not yet valid")
    if moment >= cert.valid_before:
        raise CertificateRefused("certificate has expired")


def check_user_certificate(
    cert: SSHCertificate,
    accepted_principals: Collection[str],
    address: str,
    now: float | None = None,
) -> CertificateRestrictions:
    """Refuse (:class:`CertificateRefused`) unless ``cert`` logs in a client at ``address``.

    ``accepted_principals``: one of the certificate's principals must be
    among them (the login name for TrustedUserCAKeys, the ``principals=``
    list of a ``cert-authority`` line). A certificate without principals is
    refused, as sshd does for user certificates.
    """
    check_validity(cert, USER_CERT, now)
    if not cert.principals:
        raise CertificateRefused("certificate lacks a principal list")
    if not any(name in accepted_principals for name in cert.principals):
        raise CertificateRefused("no principal of the certificate is accepted for this login")
    unknown = sorted(set(cert.critical_options) - KNOWN_CRITICAL_OPTIONS)
    if unknown:
        raise CertificateRefused(f"unsupported critical option {unknown[0][:64]!r}")
    granted = restrictions(cert)
    if granted.source_addresses is not None and not address_in_cidr_list(
        address, granted.source_addresses
    ):
        raise CertificateRefused(f"source-address does not admit {address}")
    return granted


def check_host_certificate(cert: SSHCertificate, now: float | None = None) -> None:
    """What a server checks of its own certificate before offering it."""
    check_validity(cert, HOST_CERT, now)
