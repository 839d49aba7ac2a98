"""Forwarding with the AsyncSSH and Paramiko clients: -L and -R equivalents, bad input,
refusals, limits, back-pressure and tear-down."""

from __future__ import annotations

import asyncio
import hashlib
import os
import queue
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import asyncssh
import paramiko
import pytest

from tests.support.clients import asyncssh_connect
from tests.support.forward_apps import (
    EchoServer,
    SinkServer,
    SourceServer,
    free_port,
    hooks_named,
    poll,
    recv_exactly,
    refused,
    sha256,
)
from tests.support.harness import ServerProcess

pytestmark = pytest.mark.interop

FORWARDING_APP = "tests.support.forward_apps:ForwardingServer"
PAYLOAD = os.urandom(1024 * 1024)
BULK = 48 * 1024 * 1024  # more than any socket buffers and channel windows can absorb


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def forwarding(start_server: Callable[..., ServerProcess]) -> ServerProcess:
    return start_server(app=FORWARDING_APP)


# --- AsyncSSH ---------------------------------------------------------------------------------


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


def connect(port: int) -> Any:
    return asyncssh_connect(port)


async def stream_roundtrip(port: int, payload: bytes) -> bytes:
    """Send ``payload`` to 127.0.0.1:port, half-close, and read until EOF (asyncio streams)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def send() -> None:
        writer.write(payload)
        await writer.drain()
        writer.write_eof()

    sending = asyncio.create_task(send())
    received = await reader.read()
    await sending
    writer.close()
    return received


def test_asyncssh_local_forward(forwarding: ServerProcess, echo: EchoServer) -> None:
    async def check() -> bytes:
        async with connect(forwarding.port) as conn:
            listener = await conn.forward_local_port("127.0.0.1", 0, "127.0.0.1", echo.port)
            received = await stream_roundtrip(listener.get_port(), PAYLOAD)
            listener.close()
            return received

    assert sha256(run(check())) == sha256(PAYLOAD)


def test_asyncssh_remote_forward(forwarding: ServerProcess, echo: EchoServer) -> None:
    async def check() -> tuple[bytes, int]:
        async with connect(forwarding.port) as conn:
            listener = await conn.forward_remote_port("127.0.0.1", 0, "127.0.0.1", echo.port)
            port = listener.get_port()
            received = await stream_roundtrip(port, PAYLOAD)
            listener.close()
            await listener.wait_closed()
            return received, port

    received, port = run(check())
    assert sha256(received) == sha256(PAYLOAD)
    assert hooks_named(forwarding.hooks(), "cancel-tcpip-forward") == [
        {"hook": "cancel-tcpip-forward", "address": "127.0.0.1", "port": port}
    ]
    assert poll(lambda: refused(port), what="the cancelled port to close")


def test_asyncssh_direct_tcpip_failures(forwarding: ServerProcess, echo: EchoServer) -> None:
    closed = free_port()

    async def refusal(open_channel: Callable[[], Awaitable[Any]]) -> tuple[int, str]:
        with pytest.raises(asyncssh.ChannelOpenError) as failure:
            await open_channel()
        return failure.value.code, failure.value.reason

    async def check() -> tuple[list[tuple[int, str]], bytes]:
        async with connect(forwarding.port) as conn:
            truncated = conn.create_tcp_channel()
            results = [
                await refusal(lambda: truncated._open(b"direct-tcpip", b"\0\0\0\x09127.0")),
                await refusal(lambda: conn.open_connection("127.0.0.1", closed)),
            ]
            # The same connection still forwards.
            reader, writer = await conn.open_connection("127.0.0.1", echo.port)
            writer.write(b"still serving")
            writer.write_eof()
            return results, await reader.read()

    results, answer = run(check())
    assert results == [
        (asyncssh.OPEN_CONNECT_FAILED, "malformed direct-tcpip request"),
        (asyncssh.OPEN_CONNECT_FAILED, "Connection refused"),
    ]
    assert answer == b"still serving"
    assert "Traceback" not in forwarding.log()


# --- Paramiko ---------------------------------------------------------------------------------


@contextmanager
def transport(port: int) -> Iterator[paramiko.Transport]:
    t = paramiko.Transport(socket.create_connection(("127.0.0.1", port), timeout=30))
    try:
        t.start_client(timeout=30)
        t.auth_password("alice", "secret")
        yield t
    finally:
        t.close()


def direct(t: paramiko.Transport, port: int, host: str = "127.0.0.1") -> paramiko.Channel:
    channel = t.open_channel("direct-tcpip", (host, port), ("127.0.0.1", 40000), timeout=30)
    channel.settimeout(30)
    return channel


def channel_roundtrip(channel: paramiko.Channel, payload: bytes) -> bytes:
    def send() -> None:
        channel.sendall(payload)
        channel.shutdown_write()

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    received = bytearray()
    while chunk := channel.recv(65536):
        received += chunk
    sender.join(30)
    return bytes(received)


def test_paramiko_direct_tcpip(forwarding: ServerProcess, echo: EchoServer) -> None:
    with transport(forwarding.port) as t:
        channel = direct(t, echo.port)
        assert sha256(channel_roundtrip(channel, PAYLOAD)) == sha256(PAYLOAD)
    (hook,) = hooks_named(forwarding.hooks(), "direct-tcpip")
    assert hook["origin"] == ["127.0.0.1", 40000]
    assert hook["destination"] == ["127.0.0.1", echo.port]


@pytest.mark.parametrize(
    ("target", "code"),
    [
        (("127.0.0.1", "closed"), paramiko.common.OPEN_FAILED_CONNECT_FAILED),
        (("127.0.0.1", 70000), paramiko.common.OPEN_FAILED_CONNECT_FAILED),
        # ForwardingServer's policy: loopback targets only (no connect is tried).
        (("192.0.2.1", 80), paramiko.common.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED),
    ],
    ids=["closed-port", "port-out-of-range", "policy"],
)
def test_paramiko_direct_tcpip_failures(
    forwarding: ServerProcess, echo: EchoServer, target: tuple[str, Any], code: int
) -> None:
    host, port = target
    with transport(forwarding.port) as t:
        with pytest.raises(paramiko.ChannelException) as refusal:
            direct(t, free_port() if port == "closed" else port, host)
        assert refusal.value.code == code
        # Nothing else on the connection is affected.
        assert channel_roundtrip(direct(t, echo.port), b"after") == b"after"
    assert "Traceback" not in forwarding.log()


def test_paramiko_remote_forward(forwarding: ServerProcess) -> None:
    arrivals: queue.Queue[tuple[paramiko.Channel, tuple[str, int], tuple[str, int]]]
    arrivals = queue.Queue()
    with transport(forwarding.port) as t:
        port = t.request_port_forward(
            "127.0.0.1", 0, handler=lambda ch, origin, server: arrivals.put((ch, origin, server))
        )
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            channel, origin, listened = arrivals.get(timeout=30)
            channel.settimeout(30)
            assert listened == ("127.0.0.1", port)
            assert origin == sock.getsockname()
            sock.sendall(b"hello")
            assert channel.recv(5) == b"hello"
            channel.sendall(b"world")
            assert recv_exactly(sock, 5) == b"world"
            sock.shutdown(socket.SHUT_WR)  # FIN becomes CHANNEL_EOF ...
            assert channel.recv(1) == b""
            channel.sendall(b"after eof")  # ... and the other direction stays open
            assert recv_exactly(sock, 9) == b"after eof"
            channel.close()
            assert sock.recv(1) == b""
    assert poll(lambda: refused(port), what="the forwarded port to close with the connection")


def test_connection_end_closes_bridged_sockets(forwarding: ServerProcess) -> None:
    target = socket.create_server(("127.0.0.1", 0))
    target.settimeout(30)
    arrivals: queue.Queue[paramiko.Channel] = queue.Queue()
    with target, transport(forwarding.port) as t:
        direct(t, target.getsockname()[1])
        far_end, _ = target.accept()
        port = t.request_port_forward("127.0.0.1", 0, handler=lambda ch, *_: arrivals.put(ch))
        near_end = socket.create_connection(("127.0.0.1", port), timeout=30)
        arrivals.get(timeout=30)
        t.close()
        with far_end, near_end:
            far_end.settimeout(30)
            assert far_end.recv(1) == b""  # the direct-tcpip target
            assert near_end.recv(1) == b""  # the client of the forwarded port
    assert poll(lambda: refused(port), what="the forwarded port to close with the connection")


def test_forwarded_channels_count_toward_the_channel_limit(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server(app=FORWARDING_APP, settings={"channels": {"max_channels": 1}})
    with transport(server.port) as t:
        port = t.request_port_forward("127.0.0.1", 0)
        session = t.open_session(timeout=30)  # the one channel allowed
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            assert sock.recv(1) == b""
        session.close()
    assert "dropped: too many channels" in server.log()


def test_paramiko_refused_forwarded_channel_drops_the_socket(forwarding: ServerProcess) -> None:
    with transport(forwarding.port) as t:
        # A raw request: Paramiko then has no handler and refuses forwarded-tcpip opens.
        reply = t.global_request("tcpip-forward", ("127.0.0.1", 0), wait=True)
        assert reply is not None
        port = reply.get_int()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            assert sock.recv(1) == b""
        # The SSH connection is unharmed.
        channel = t.open_session(timeout=30)
        channel.exec_command("echo ok")
        assert channel.makefile("rb").read() == b"ok\n"


def test_paramiko_forward_requests_refused(forwarding: ServerProcess) -> None:
    with transport(forwarding.port) as t:
        with pytest.raises(paramiko.SSHException):
            t.request_port_forward("0.0.0.0", 0)  # not allowed by ForwardingServer
        assert t.global_request("tcpip-forward", ("127.0.0.1",), wait=True) is None  # truncated
        assert t.global_request("cancel-tcpip-forward", ("127.0.0.1", 1), wait=True) is None
        assert t.request_port_forward("127.0.0.1", 0) > 0


def test_listener_limit_per_connection(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(app=FORWARDING_APP, settings={"max_forward_listeners": 2})
    with transport(server.port) as t:
        first = t.request_port_forward("127.0.0.1", 0)
        t.request_port_forward("127.0.0.1", 0)
        with pytest.raises(paramiko.SSHException):
            t.request_port_forward("127.0.0.1", 0)
        t.cancel_port_forward("127.0.0.1", first)
        assert poll(lambda: refused(first), what="the cancelled port to close")
        assert t.request_port_forward("127.0.0.1", 0) > 0
    # Another connection has its own allowance.
    with transport(server.port) as t:
        t.request_port_forward("127.0.0.1", 0)
        t.request_port_forward("127.0.0.1", 0)


def test_backpressure_from_a_fast_tcp_source(forwarding: ServerProcess) -> None:
    """A client that stops reading makes the server stop reading the target socket."""
    source = SourceServer(BULK)
    try:
        with transport(forwarding.port) as t:
            channel = direct(t, source.port)
            assert source.held_back.wait(30), "the server read everything into memory"
            assert 0 < source.sent_before_stall < BULK
            received = 0
            while chunk := channel.recv(1 << 20):
                received += len(chunk)
            assert received == BULK
    finally:
        source.close()


def test_backpressure_towards_a_slow_tcp_sink(forwarding: ServerProcess) -> None:
    """A target that stops reading closes the channel window to the client."""
    sink = SinkServer()
    payload = os.urandom(1 << 20)
    digest = hashlib.sha256()
    sent = 0

    def send_some(channel: paramiko.Channel) -> None:
        nonlocal sent
        count = channel.send(payload[: min(len(payload), BULK - sent)])
        digest.update(payload[:count])
        sent += count

    try:
        with transport(forwarding.port) as t:
            channel = direct(t, sink.port)
            channel.settimeout(1.0)  # a send that waits this long for window counts as held
            with pytest.raises(socket.timeout):
                while sent < BULK:
                    send_some(channel)
            assert 0 < sent < BULK
            sink.drain.set()
            channel.settimeout(30)
            while sent < BULK:
                send_some(channel)
            channel.shutdown_write()
            assert sink.finished.wait(30)
            assert (sink.received, sink.digest.hexdigest()) == (BULK, digest.hexdigest())
    finally:
        sink.close()
