"""OpenSSH's host key rotation: ``hostkeys-00@openssh.com`` and ``hostkeys-prove-00@openssh.com``.

After a client logs in, the server names every host key it has now (after a
SIGHUP, the new set) in a ``hostkeys-00@openssh.com`` global request without
a reply. An OpenSSH client with ``UpdateHostKeys`` asks the server to prove
the keys it did not know with ``hostkeys-prove-00@openssh.com``; the reply
holds, for each key in the order asked, a signature over::

    string "hostkeys-prove-00@openssh.com"
    string session identifier
    string the key's public blob

Once proven, the client adds those keys to known_hosts and drops the ones
the server no longer names (OpenSSH's PROTOCOL file, section 2.5).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from twisted.logger import Logger

from spindlex_tw.core import wire
from spindlex_tw.core.errors import DecodeError
from spindlex_tw.core.events import GlobalRequestReceived
from spindlex_tw.crypto.certificate import SSHCertificate
from spindlex_tw.crypto.pkey import PKey
from spindlex_tw.protocol import constants as c

log = Logger(namespace="spindlex_tw.hostkeys")

ANNOUNCE = "hostkeys-00@openssh.com"
PROVE = "hostkeys-prove-00@openssh.com"


def announce(conn: Any, keys: Sequence[PKey]) -> None:
    """Name every host key to the client that just logged in on ``conn``."""
    # As sshd, plain keys only: a client learns certificates' CAs, not certificates.
    plain = [key for key in keys if not isinstance(key, SSHCertificate)]
    if conn.core is None or conn.core.closed or not plain:
        return
    blobs = b"".join(wire.string(key.get_public_key_bytes()) for key in plain)
    conn.core.send(wire.byte(c.SSH_MSG_GLOBAL_REQUEST) + wire.string(ANNOUNCE) + b"\0" + blobs)
    conn.flush()


def prover(keys: Callable[[], Sequence[PKey]]) -> Callable[[Any, GlobalRequestReceived], None]:
    """The handler of ``hostkeys-prove-00@openssh.com`` requests, signing with ``keys()``."""

    def prove(conn: Any, event: GlobalRequestReceived) -> None:
        reply = _signatures(conn, event.data, {k.get_public_key_bytes(): k for k in keys()})
        conn.global_reply(event, reply is not None, reply or b"")

    return prove


def _signatures(conn: Any, data: bytes, ours: dict[bytes, PKey]) -> bytes | None:
    """One signature per key asked about, or None to refuse (a key we do not have)."""
    core = conn.core
    if core is None or core.session_id is None or core.negotiated is None:
        return None
    reader = wire.Reader(data)
    signatures = []
    try:
        while reader.remaining():
            blob = reader.string()
            key = ours.get(blob)
            if key is None:
                # A key removed by a reload since the announcement, or never ours.
                log.info("{peer} asked to prove a host key we do not have", peer=conn.peer)
                return None
            signed = wire.string(PROVE) + wire.string(core.session_id) + wire.string(blob)
            signatures.append(wire.string(key.sign_ssh(signed, _algorithm(key, core))))
    except DecodeError:
        return None
    return b"".join(signatures)


def _algorithm(key: PKey, core: Any) -> str | None:
    # OpenSSH checks an RSA proof with the algorithm the key exchange chose when
    # that was an RSA one; otherwise any RSA signature will do: use SHA-512.
    if "rsa-sha2-512" not in key.host_key_algorithms():
        return None
    chosen = core.negotiated.host_key
    return chosen if chosen.startswith("rsa-sha2-") else "rsa-sha2-512"
