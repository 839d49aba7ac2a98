"""core.requests for OpenSSH's forwarding extensions: agent, Unix sockets, x11 channels.

Known answers as OpenSSH's ssh sends them (PROTOCOL section 2.4, PROTOCOL.agent),
refusals of malformed bodies as ``Malformed``, and round trips.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spindlex_tw.core import requests as rq
from spindlex_tw.core.errors import DecodeError


def _s(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def test_agent_request_has_no_body() -> None:
    assert rq.parse_channel_request("auth-agent-req@openssh.com", b"") == (rq.AgentForwardRequest())
    assert isinstance(rq.parse_channel_request("auth-agent-req@openssh.com", b"x"), rq.Malformed)


def test_direct_streamlocal_known_answer() -> None:
    # ssh -L /l.sock:/tmp/r.sock: path, reserved string, reserved uint32.
    body = _s(b"/tmp/r.sock") + _s(b"") + bytes(4)
    value = rq.DirectStreamlocal("/tmp/r.sock")
    assert rq.parse_channel_open("direct-streamlocal@openssh.com", body) == value
    assert value.encode() == body


def test_streamlocal_forward_known_answers() -> None:
    body = _s(b"/tmp/listen.sock")
    assert rq.parse_global_request("streamlocal-forward@openssh.com", body) == (
        rq.StreamlocalForward("/tmp/listen.sock")
    )
    assert rq.parse_global_request("cancel-streamlocal-forward@openssh.com", body) == (
        rq.CancelStreamlocalForward("/tmp/listen.sock")
    )


def test_bodies_the_server_sends() -> None:
    assert rq.ForwardedStreamlocal("/tmp/l.sock").encode() == _s(b"/tmp/l.sock") + _s(b"")
    assert rq.X11Channel("127.0.0.1", 40000).encode() == _s(b"127.0.0.1") + (40000).to_bytes(
        4, "big"
    )


@pytest.mark.parametrize(
    ("kind", "parse", "body"),
    [
        ("direct-streamlocal@openssh.com", rq.parse_channel_open, _s(b"") + _s(b"") + bytes(4)),
        (
            "direct-streamlocal@openssh.com",
            rq.parse_channel_open,
            _s(b"/a\0b") + _s(b"") + bytes(4),
        ),
        ("direct-streamlocal@openssh.com", rq.parse_channel_open, _s(b"/a")),
        ("streamlocal-forward@openssh.com", rq.parse_global_request, _s(b"")),
        ("streamlocal-forward@openssh.com", rq.parse_global_request, _s(b"/a") + b"x"),
        ("cancel-streamlocal-forward@openssh.com", rq.parse_global_request, b"\0\0"),
        ("streamlocal-forward@openssh.com", rq.parse_global_request, _s(b"\xff")),
    ],
)
def test_malformed_bodies_are_refusals(kind: str, parse: Any, body: bytes) -> None:
    assert isinstance(parse(kind, body), rq.Malformed)


paths = st.text(st.characters(codec="utf-8", exclude_characters="\0"), min_size=1, max_size=60)


@given(
    st.one_of(
        st.builds(rq.StreamlocalForward, paths), st.builds(rq.CancelStreamlocalForward, paths)
    )
)
def test_global_round_trip(value: rq.StreamlocalForward | rq.CancelStreamlocalForward) -> None:
    assert rq.parse_global_request(value.NAME, value.encode()) == value


@given(paths)
def test_channel_round_trip(path: str) -> None:
    assert rq.decode(rq.DirectStreamlocal.read, rq.DirectStreamlocal(path).encode()) == (
        rq.DirectStreamlocal(path)
    )
    assert rq.decode(rq.ForwardedStreamlocal.read, rq.ForwardedStreamlocal(path).encode()) == (
        rq.ForwardedStreamlocal(path)
    )


@given(st.binary(max_size=80))
def test_arbitrary_bytes_raise_only_decode_error(data: bytes) -> None:
    for read in (
        rq.DirectStreamlocal.read,
        rq.ForwardedStreamlocal.read,
        rq.StreamlocalForward.read,
        rq.CancelStreamlocalForward.read,
        rq.X11Channel.read,
        rq.AgentForwardRequest.read,
    ):
        with contextlib.suppress(DecodeError):
            rq.decode(read, data)
