"""Every decoder, fed random or mutated input, only ever raises the project's ProtocolError.

``python -m pytest tests/core/test_fuzz_decoders.py --hypothesis-profile=fuzz``
runs the long version (see tests/conftest.py); the default run is short.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from spindlex_tw.core import events as ev
from spindlex_tw.core import requests, wire
from spindlex_tw.core.connection import ChannelLimits, ConnectionService
from spindlex_tw.core.errors import ProtocolError
from spindlex_tw.core.kexinit import KexInit
from spindlex_tw.core.userauth import AuthLimits, UserAuthService
from spindlex_tw.protocol import constants as c

VALID_KEXINIT = KexInit(
    os.urandom(16),
    ["curve25519-sha256"],
    ["ssh-ed25519"],
    ["aes128-ctr"],
    ["aes128-ctr"],
    ["hmac-sha2-256"],
    ["hmac-sha2-256"],
    ["none"],
    ["none"],
).encode()


class _Transport:
    """What the services need of a transport, recording what they send."""

    session_id = b"\x01" * 32
    closed = False
    authenticated = False

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.service: Any = None

    def send(self, payload: bytes) -> None:
        self.sent.append(payload)

    def send_parts(self, parts: list[bytes | memoryview]) -> None:
        self.sent.append(b"".join(parts))

    def disconnect(self, reason: int, description: str) -> None:
        self.closed = True

    def unimplemented(self) -> list[ev.Event]:
        return []

    def start_delayed_compression(self) -> None:
        self.authenticated = True

    def fail(self, exc: ProtocolError) -> ev.ConnectionFailed:
        # The real transport answers with DISCONNECT; here the error is the outcome.
        raise exc


def mutations(seed: bytes) -> st.SearchStrategy[bytes]:
    """Random bytes, and the valid message with bytes flipped, cut or appended."""
    flips = st.lists(st.tuples(st.integers(0, len(seed) - 1), st.integers(0, 255)), max_size=6)

    def mutate(changes: list[tuple[int, int]], cut: int, tail: bytes) -> bytes:
        data = bytearray(seed)
        for index, value in changes:
            data[index] = value
        return bytes(data[:cut]) + tail

    return st.one_of(
        st.binary(max_size=400),
        st.builds(mutate, flips, st.integers(0, len(seed)), st.binary(max_size=8)),
    )


def only_protocol_errors(call: Any, *args: Any) -> None:
    with contextlib.suppress(ProtocolError):
        call(*args)


@given(mutations(VALID_KEXINIT))
def test_kexinit_decoder(data: bytes) -> None:
    only_protocol_errors(KexInit.decode, data)


USERAUTH_SAMPLE = (
    wire.byte(c.SSH_MSG_USERAUTH_REQUEST)
    + wire.string("alice")
    + wire.string("ssh-connection")
    + wire.string("publickey")
    + wire.boolean(True)
    + wire.string("ssh-ed25519")
    + wire.string(b"\x00\x00\x00\x0bssh-ed25519" + wire.string(b"k" * 32))
    + wire.string(b"\x00\x00\x00\x0bssh-ed25519" + wire.string(b"s" * 64))
)


METHODS = ["publickey", "password", "keyboard-interactive"]


@given(st.lists(mutations(USERAUTH_SAMPLE), min_size=1, max_size=4))
def test_userauth_decoder(messages: list[bytes]) -> None:
    transport = _Transport()
    service = UserAuthService(
        transport,  # type: ignore[arg-type]
        AuthLimits(),
        lambda blob, data, sig, alg: False,
        lambda: transport.service,
    )
    for message in messages:
        msg = message[0] if message else c.SSH_MSG_USERAUTH_REQUEST
        payload = message or b"\x32"
        try:
            events = service.handle(msg, payload)
            while events:
                event = events.pop(0)
                if isinstance(event, ev.AuthMethodsNeeded):
                    events += service.allow_methods(METHODS)
                elif isinstance(event, ev.Event) and not service.done:
                    service.reject(partial=False, methods=None)
        except ProtocolError:
            return


CHANNEL_SAMPLES = [
    wire.byte(c.SSH_MSG_CHANNEL_OPEN)
    + wire.string("session")
    + wire.uint32(1)
    + wire.uint32(1 << 20)
    + wire.uint32(32768),
    wire.byte(c.SSH_MSG_CHANNEL_REQUEST)
    + wire.uint32(0)
    + wire.string("exec")
    + wire.boolean(True)
    + wire.string("ls"),
    wire.byte(c.SSH_MSG_CHANNEL_DATA) + wire.uint32(0) + wire.string(b"data"),
    wire.byte(c.SSH_MSG_CHANNEL_WINDOW_ADJUST) + wire.uint32(0) + wire.uint32(100),
    wire.byte(c.SSH_MSG_GLOBAL_REQUEST)
    + wire.string("tcpip-forward")
    + wire.boolean(True)
    + wire.string("")
    + wire.uint32(0),
]


@given(st.lists(st.one_of(*[mutations(sample) for sample in CHANNEL_SAMPLES]), max_size=8))
def test_connection_decoder(messages: list[bytes]) -> None:
    transport = _Transport()
    service = ConnectionService(transport, ChannelLimits())  # type: ignore[arg-type]
    # One channel already open, so later messages reach deeper code.
    service.handle(c.SSH_MSG_CHANNEL_OPEN, CHANNEL_SAMPLES[0])
    service.accept_open(1)
    for message in messages:
        if not message:
            continue
        try:
            for event in service.handle(message[0], message):
                if isinstance(event, ev.ChannelOpenRequested):
                    service.accept_open(event.peer_id)
        except ProtocolError:
            return


@given(st.sampled_from(sorted(requests._CHANNEL_REQUESTS)), st.binary(max_size=200))
def test_session_request_parsers(name: str, data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        requests.decode(requests._CHANNEL_REQUESTS[name], data)
