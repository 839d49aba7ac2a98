"""core.requests: the bodies of channel requests, channel opens and global requests.

Known answers written out byte by byte as clients send them, the connection
service's events carrying the decoded values, and two properties: every value
survives encode then decode, and arbitrary bytes never raise anything but the
core's ``DecodeError`` (``parse_*`` turn that into ``Malformed``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spindlex_tw.core import events as ev
from spindlex_tw.core import requests as rq
from spindlex_tw.core import wire
from spindlex_tw.core.connection import ChannelLimits, ConnectionService
from spindlex_tw.core.errors import DecodeError
from spindlex_tw.protocol import constants as c

# --- known answers ------------------------------------------------------------------------

# ssh -t: term, 80x24 characters, 640x480 pixels, ISPEED/OSPEED 38400, TTY_OP_END.
PTY_BODY = bytes.fromhex(
    "0000000e" + b"xterm-256color".hex() + "00000050" + "00000018" + "00000280" + "000001e0"
    "0000000b" + "80" + "00009600" + "81" + "00009600" + "00"
)
MODES = bytes.fromhex("80000096008100009600" + "00")

KNOWN_CHANNEL_REQUESTS = [
    ("pty-req", PTY_BODY, rq.PtyRequest("xterm-256color", 80, 24, 640, 480, MODES)),
    (
        "env",
        bytes.fromhex("00000004") + b"LANG" + bytes.fromhex("00000007") + b"C.UTF-8",
        rq.EnvRequest("LANG", "C.UTF-8"),
    ),
    ("exec", bytes.fromhex("00000007") + b"echo hi", rq.ExecRequest(b"echo hi")),
    ("exec", bytes.fromhex("00000002") + b"\xff\xfe", rq.ExecRequest(b"\xff\xfe")),
    ("shell", b"", rq.ShellRequest()),
    ("subsystem", bytes.fromhex("00000004") + b"sftp", rq.SubsystemRequest("sftp")),
    (
        "window-change",
        bytes.fromhex("00000084000000320000000000000000"),
        rq.WindowChange(132, 50, 0, 0),
    ),
    ("signal", bytes.fromhex("00000004") + b"TERM", rq.SignalRequest("TERM")),
    (
        "x11-req",
        bytes.fromhex("0000000012")
        + b"MIT-MAGIC-COOKIE-1"
        + bytes.fromhex("00000004")
        + b"\x01\x02\x03\x04"
        + bytes.fromhex("00000000"),
        rq.X11Request(False, "MIT-MAGIC-COOKIE-1", b"\x01\x02\x03\x04", 0),
    ),
]


@pytest.mark.parametrize(("name", "body", "value"), KNOWN_CHANNEL_REQUESTS)
def test_channel_request_known_answers(name: str, body: bytes, value: Any) -> None:
    assert rq.parse_channel_request(name, body) == value
    assert value.encode() == body
    assert name == value.NAME


def test_direct_tcpip_known_answer() -> None:
    # ssh -L 8080:127.0.0.1:22, a local client at [::1]:50000.
    body = (
        bytes.fromhex("00000009")
        + b"127.0.0.1"
        + bytes.fromhex("00000016")
        + bytes.fromhex("00000003")
        + b"::1"
        + bytes.fromhex("0000c350")
    )
    value = rq.DirectTcpip("127.0.0.1", 22, "::1", 50000)
    assert rq.parse_channel_open("direct-tcpip", body) == value
    assert value.encode() == body


def test_forward_known_answers() -> None:
    body = bytes.fromhex("00000009") + b"localhost" + bytes.fromhex("00000000")
    assert rq.parse_global_request("tcpip-forward", body) == rq.TcpipForward("localhost", 0)
    body = bytes.fromhex("00000000") + bytes.fromhex("00001f90")
    assert rq.parse_global_request("cancel-tcpip-forward", body) == rq.CancelTcpipForward("", 8080)


def test_forwarded_tcpip_body_the_server_sends() -> None:
    value = rq.ForwardedTcpip("localhost", 8022, "127.0.0.1", 40000)
    assert value.encode() == (
        bytes.fromhex("00000009")
        + b"localhost"
        + bytes.fromhex("00001f56")
        + bytes.fromhex("00000009")
        + b"127.0.0.1"
        + bytes.fromhex("00009c40")
    )
    assert rq.decode(rq.ForwardedTcpip.read, value.encode()) == value


@pytest.mark.parametrize(
    ("parse", "name", "body", "description"),
    [
        (rq.parse_channel_request, "pty-req", b"\x00", "message truncated"),
        (rq.parse_channel_request, "shell", b"\x00", "unexpected trailing data in message"),
        (rq.parse_channel_request, "exec", wire.string(b"ls") + b"x", "unexpected trailing"),
        (rq.parse_channel_request, "env", wire.string(b"\xff") + wire.string(b""), "UTF-8"),
        (rq.parse_channel_request, "signal", wire.string("TÉRM"), "not ASCII"),
        (rq.parse_channel_open, "direct-tcpip", b"\0\0\0\x09127.0", "message truncated"),
        (
            rq.parse_channel_open,
            "direct-tcpip",
            rq.DirectTcpip("h", 0, "o", 1).encode(),  # port 0 cannot be connected to
            "port out of range",
        ),
        (
            rq.parse_channel_open,
            "direct-tcpip",
            rq.DirectTcpip("h", 22, "o", rq.MAX_PORT + 1).encode(),
            "port out of range",
        ),
        (
            rq.parse_global_request,
            "tcpip-forward",
            rq.TcpipForward("", rq.MAX_PORT + 1).encode(),
            "port out of range",
        ),
        (
            rq.parse_global_request,
            "cancel-tcpip-forward",
            wire.string("") + wire.uint32(0xFFFFFFFF),
            "port out of range",
        ),
    ],
)
def test_malformed_bodies(
    parse: Callable[[str, bytes], object], name: str, body: bytes, description: str
) -> None:
    result = parse(name, body)
    assert isinstance(result, rq.Malformed)
    assert description in result.description


def test_unknown_types_are_left_unread() -> None:
    assert rq.parse_channel_request("frobnicate", b"\x00") is None
    assert rq.parse_channel_request("exit-status", wire.uint32(0)) is None
    assert rq.parse_channel_open("session", b"") is None
    assert rq.parse_channel_open("forwarded-tcpip", b"") is None  # never a client's to open
    assert rq.parse_global_request("keepalive@openssh.com", b"") is None


def test_port_limits() -> None:
    assert rq.MAX_PORT == 65535
    assert rq.parse_global_request("tcpip-forward", rq.TcpipForward("", 65535).encode()) == (
        rq.TcpipForward("", 65535)
    )
    assert rq.parse_channel_open(
        "direct-tcpip", rq.DirectTcpip("h", 65535, "o", 0).encode()
    ) == rq.DirectTcpip("h", 65535, "o", 0)


# --- the events carry the values ----------------------------------------------------------------


class _Sink:
    session_id = b"\x01" * 32

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, payload: bytes) -> None:
        self.sent.append(payload)

    def send_parts(self, parts: list[bytes | memoryview]) -> None:
        self.sent.append(b"".join(parts))


def _service_with_session() -> tuple[ConnectionService, _Sink, int]:
    sink = _Sink()
    service = ConnectionService(sink, ChannelLimits())  # type: ignore[arg-type]
    service.handle(
        c.SSH_MSG_CHANNEL_OPEN,
        wire.byte(c.SSH_MSG_CHANNEL_OPEN)
        + wire.string("session")
        + wire.uint32(3)
        + wire.uint32(1 << 20)
        + wire.uint32(32768),
    )
    return service, sink, service.accept_open(3)


def _channel_request(service: ConnectionService, local: int, name: str, body: bytes) -> ev.Event:
    (event,) = service.handle(
        c.SSH_MSG_CHANNEL_REQUEST,
        wire.byte(c.SSH_MSG_CHANNEL_REQUEST)
        + wire.uint32(local)
        + wire.string(name)
        + wire.boolean(True)
        + body,
    )
    return event


def test_channel_request_event_carries_the_value() -> None:
    service, _, local = _service_with_session()
    event = _channel_request(service, local, "pty-req", PTY_BODY)
    assert event == ev.ChannelRequestReceived(
        local, "pty-req", True, PTY_BODY, rq.PtyRequest("xterm-256color", 80, 24, 640, 480, MODES)
    )


def test_malformed_channel_request_is_an_event_not_a_disconnect() -> None:
    service, sink, local = _service_with_session()
    event = _channel_request(service, local, "pty-req", b"\x00")
    assert isinstance(event, ev.ChannelRequestReceived)
    assert event.request == rq.Malformed("message truncated")
    # The adapter refuses it in order like any other answer; the channel lives on.
    sink.sent.clear()
    service.channel_reply(local, False)
    assert sink.sent == [wire.byte(c.SSH_MSG_CHANNEL_FAILURE) + wire.uint32(3)]
    assert service.channel_ids() == [local]


def test_unknown_channel_request_keeps_its_raw_body() -> None:
    service, _, local = _service_with_session()
    event = _channel_request(service, local, "frobnicate", b"raw")
    assert isinstance(event, ev.ChannelRequestReceived)
    assert (event.request, event.data) == (None, b"raw")


def test_global_request_and_channel_open_events_carry_values() -> None:
    service, _, _ = _service_with_session()
    (forward,) = service.handle(
        c.SSH_MSG_GLOBAL_REQUEST,
        wire.byte(c.SSH_MSG_GLOBAL_REQUEST)
        + wire.string("tcpip-forward")
        + wire.boolean(True)
        + rq.TcpipForward("localhost", 0).encode(),
    )
    assert isinstance(forward, ev.GlobalRequestReceived)
    assert forward.request == rq.TcpipForward("localhost", 0)
    target = rq.DirectTcpip("example.org", 443, "127.0.0.1", 1234)
    (opening,) = service.handle(
        c.SSH_MSG_CHANNEL_OPEN,
        wire.byte(c.SSH_MSG_CHANNEL_OPEN)
        + wire.string("direct-tcpip")
        + wire.uint32(4)
        + wire.uint32(1 << 20)
        + wire.uint32(32768)
        + target.encode(),
    )
    assert opening == ev.ChannelOpenRequested("direct-tcpip", 4, target.encode(), target)
    (keepalive,) = service.handle(
        c.SSH_MSG_GLOBAL_REQUEST,
        wire.byte(c.SSH_MSG_GLOBAL_REQUEST)
        + wire.string("keepalive@openssh.com")
        + wire.boolean(False),
    )
    assert isinstance(keepalive, ev.GlobalRequestReceived) and keepalive.request is None


# --- properties -----------------------------------------------------------------------------------

u32 = st.integers(0, 0xFFFFFFFF)
text = st.text(st.characters(codec="utf-8"), max_size=40)
ascii_text = st.text(st.characters(codec="ascii"), max_size=20)
port = st.integers(1, rq.MAX_PORT)
any_port = st.integers(0, rq.MAX_PORT)

CHANNEL_REQUESTS = st.one_of(
    st.builds(rq.PtyRequest, text, u32, u32, u32, u32, st.binary(max_size=60)),
    st.builds(rq.EnvRequest, text, text),
    st.builds(rq.ExecRequest, st.binary(max_size=60)),
    st.just(rq.ShellRequest()),
    st.builds(rq.SubsystemRequest, text),
    st.builds(rq.WindowChange, u32, u32, u32, u32),
    st.builds(rq.SignalRequest, ascii_text),
    st.builds(rq.X11Request, st.booleans(), text, st.binary(max_size=40), u32),
)
FORWARDS = st.one_of(
    st.builds(rq.TcpipForward, text, any_port), st.builds(rq.CancelTcpipForward, text, any_port)
)
TCPIP_CHANNELS = st.one_of(
    st.builds(rq.DirectTcpip, text, port, text, any_port),
    st.builds(rq.ForwardedTcpip, text, port, text, any_port),
)


@given(CHANNEL_REQUESTS)
def test_channel_request_round_trip(value: rq.ChannelRequest) -> None:
    assert rq.parse_channel_request(value.NAME, value.encode()) == value


@given(FORWARDS)
def test_global_request_round_trip(value: rq.GlobalRequest) -> None:
    assert rq.parse_global_request(value.NAME, value.encode()) == value


@given(TCPIP_CHANNELS)
def test_tcpip_channel_round_trip(value: rq.DirectTcpip | rq.ForwardedTcpip) -> None:
    assert rq.decode(type(value).read, value.encode()) == value
    if isinstance(value, rq.DirectTcpip):
        assert rq.parse_channel_open(value.NAME, value.encode()) == value


READERS: list[Callable[[wire.Reader], Any]] = [
    rq.PtyRequest.read,
    rq.EnvRequest.read,
    rq.ExecRequest.read,
    rq.ShellRequest.read,
    rq.SubsystemRequest.read,
    rq.WindowChange.read,
    rq.SignalRequest.read,
    rq.X11Request.read,
    rq.DirectTcpip.read,
    rq.ForwardedTcpip.read,
    rq.TcpipForward.read,
    rq.CancelTcpipForward.read,
]
PARSERS: list[tuple[Callable[[str, bytes], object], str]] = [
    *((rq.parse_channel_request, name) for name in sorted(rq._CHANNEL_REQUESTS)),
    (rq.parse_channel_open, "direct-tcpip"),
    (rq.parse_global_request, "tcpip-forward"),
    (rq.parse_global_request, "cancel-tcpip-forward"),
]


def _damaged(body: bytes) -> st.SearchStrategy[bytes]:
    """A valid body cut short, with bytes appended, or with one byte changed."""
    return st.one_of(
        st.builds(
            lambda cut, tail: body[:cut] + tail, st.integers(0, len(body)), st.binary(max_size=8)
        ),
        st.builds(
            lambda at, value: body[:at] + bytes((value,)) + body[at + 1 :],
            st.integers(0, max(len(body) - 1, 0)),
            st.integers(0, 255),
        ),
    )


BODIES = st.one_of(
    st.binary(max_size=120),
    st.one_of(CHANNEL_REQUESTS, FORWARDS, TCPIP_CHANNELS)
    .map(lambda v: v.encode())
    .flatmap(_damaged),
)


@given(st.sampled_from(READERS), BODIES)
def test_decoders_raise_only_decode_error(read: Callable[[wire.Reader], Any], data: bytes) -> None:
    try:
        value = rq.decode(read, data)
    except DecodeError:
        return
    # What decodes is a value like any other: it survives its own round trip.
    assert rq.decode(read, value.encode()) == value


@given(st.sampled_from(PARSERS), BODIES)
def test_parsers_never_raise(
    parser: tuple[Callable[[str, bytes], object], str], data: bytes
) -> None:
    parse, name = parser
    result = parse(name, data)
    assert result is not None
