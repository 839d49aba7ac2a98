"""Port-forwarding test applications and the small TCP peers the forwarding tests use.

Applications (run by server_main in the server process):
- ``ForwardingServer``: ``TestServer`` plus forwarding limited to the loopback:
  direct-tcpip to 127.0.0.1/localhost/::1, tcpip-forward on "localhost" or
  "127.0.0.1"; every forwarding hook call is recorded.
- ``RefusingForwardServer``: lets direct-tcpip channels reach the forwarding
  hook and then refuses every target; refuses every tcpip-forward.

Peers (run in the test process, each in a daemon thread with bounded sockets):
``EchoServer`` echoes each connection until EOF, then half-closes;
``SourceServer`` streams a fixed amount and records whether it was ever held
back; ``SinkServer`` reads only once told to.
"""

from __future__ import annotations

import contextlib
import hashlib
import select
import socket
import threading
import time
from typing import Any

from spindlex_tw.protocol.constants import (
    CHANNEL_SESSION,
    SSH_OPEN_ADMINISTRATIVELY_PROHIBITED,
    SSH_OPEN_CONNECT_SUCCESS,
    SSH_OPEN_UNKNOWN_CHANNEL_TYPE,
)
from tests.support.apps import TestServer, record

# Shared waiting helpers, re-exported for the forwarding tests that import them from here.
from tests.support.waiting import free_port as free_port
from tests.support.waiting import poll as poll

LOOPBACK = ("127.0.0.1", "localhost", "::1")
SOCKET_TIMEOUT = 30.0  # no peer thread can outlive a test by more than this


class ForwardingServer(TestServer):
    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind in (CHANNEL_SESSION, "direct-tcpip"):
            return SSH_OPEN_CONNECT_SUCCESS
        return SSH_OPEN_UNKNOWN_CHANNEL_TYPE

    def check_channel_direct_tcpip_request(
        self, chanid: int, origin: tuple[str, int], destination: tuple[str, int]
    ) -> int:
        record("direct-tcpip", origin=list(origin), destination=list(destination))
        if destination[0] in LOOPBACK:
            return SSH_OPEN_CONNECT_SUCCESS
        return SSH_OPEN_ADMINISTRATIVELY_PROHIBITED

    def check_port_forward_request(self, address: str, port: int) -> bool:
        record("tcpip-forward", address=address, port=port)
        return address in ("localhost", "127.0.0.1")

    def check_port_forward_cancel_request(self, address: str, port: int) -> bool:
        record("cancel-tcpip-forward", address=address, port=port)
        return True


class RefusingForwardServer(TestServer):
    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind in (CHANNEL_SESSION, "direct-tcpip"):
            return SSH_OPEN_CONNECT_SUCCESS
        return SSH_OPEN_UNKNOWN_CHANNEL_TYPE

    def check_channel_direct_tcpip_request(
        self, chanid: int, origin: tuple[str, int], destination: tuple[str, int]
    ) -> int:
        return SSH_OPEN_ADMINISTRATIVELY_PROHIBITED

    def check_port_forward_request(self, address: str, port: int) -> bool:
        return False


# --- TCP peers -------------------------------------------------------------------------------


class _Listener:
    """A loopback listening socket served by one accept thread; one thread per connection."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(SOCKET_TIMEOUT)
        self.port: int = self._sock.getsockname()[1]
        self.errors: list[BaseException] = []
        self._closed = False
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            conn.settimeout(SOCKET_TIMEOUT)
            threading.Thread(target=self._serve_one, args=(conn,), daemon=True).start()

    def _serve_one(self, conn: socket.socket) -> None:
        try:
            with conn:
                self.serve(conn)
        except OSError as exc:
            self.errors.append(exc)

    def serve(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._closed = True
        # shutdown() wakes the blocked accept(); close() alone would not.
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(SOCKET_TIMEOUT)


class EchoServer(_Listener):
    """Echoes every connection; on EOF half-closes so the client sees its own EOF."""

    def serve(self, conn: socket.socket) -> None:
        while chunk := conn.recv(65536):
            conn.sendall(chunk)
        conn.shutdown(socket.SHUT_WR)


class SourceServer(_Listener):
    """Sends ``total`` bytes to each connection; ``held_back`` is set if sending ever stalled.

    A stall is a send that could not proceed for ``stall`` seconds: proof that
    somebody downstream stopped reading instead of buffering everything.
    """

    def __init__(self, total: int, stall: float = 1.0) -> None:
        self.total = total
        self.stall = stall
        self.held_back = threading.Event()
        self.sent_before_stall = -1
        super().__init__()

    def serve(self, conn: socket.socket) -> None:
        block = b"\x5a" * 65536
        sent = 0
        deadline = time.monotonic() + SOCKET_TIMEOUT
        while sent < self.total and time.monotonic() < deadline:
            _, writable, _ = select.select([], [conn], [], self.stall)
            if not writable:
                if not self.held_back.is_set():
                    self.sent_before_stall = sent
                    self.held_back.set()
                continue
            sent += conn.send(block[: self.total - sent])
        conn.shutdown(socket.SHUT_WR)


class SinkServer(_Listener):
    """Reads nothing until ``drain`` is set, then counts and hashes everything until EOF."""

    def __init__(self) -> None:
        self.drain = threading.Event()
        self.received = 0
        self.digest = hashlib.sha256()
        self.finished = threading.Event()
        super().__init__()

    def serve(self, conn: socket.socket) -> None:
        self.drain.wait(SOCKET_TIMEOUT)
        while chunk := conn.recv(65536):
            self.received += len(chunk)
            self.digest.update(chunk)
        self.finished.set()


# --- helpers for the tests --------------------------------------------------------------------


def try_connect(port: int) -> socket.socket | None:
    """A connected socket to 127.0.0.1:port, or None if refused."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT)
    except ConnectionRefusedError:
        return None
    return sock


def refused(port: int) -> bool | None:
    """True once 127.0.0.1:port refuses connections; None while it still accepts."""
    sock = try_connect(port)
    if sock is None:
        return True
    sock.close()
    return None


def echo_roundtrip(sock: socket.socket, payload: bytes) -> bytes:
    """Send ``payload`` (from a thread), half-close, and read everything back until EOF.

    A missing EOF is a failure (the socket timeout raises), not a short answer.
    """
    sender_error: list[BaseException] = []

    def send() -> None:
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            sender_error.append(exc)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    received = bytearray()
    while chunk := sock.recv(65536):
        received += chunk
    sender.join(SOCKET_TIMEOUT)
    if sender_error:
        raise sender_error[0]
    return bytes(received)


def socks5_connect(sock: socket.socket, host: str, port: int) -> None:
    """The client half of a SOCKS5 CONNECT (RFC 1928) with no authentication."""
    sock.sendall(b"\x05\x01\x00")
    assert recv_exactly(sock, 2) == b"\x05\x00"
    sock.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(host) + port.to_bytes(2, "big"))
    reply = recv_exactly(sock, 10)
    assert reply[:2] == b"\x05\x00", f"SOCKS5 CONNECT failed: {reply!r}"


def recv_exactly(sock: socket.socket, count: int) -> bytes:
    data = bytearray()
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise EOFError(f"connection closed after {len(data)} of {count} bytes")
        data += chunk
    return bytes(data)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hooks_named(hooks: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [entry for entry in hooks if entry.get("hook") == name]
