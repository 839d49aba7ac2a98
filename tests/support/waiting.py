"""Waiting on another process's event, bounded by a generous timeout, never a bare sleep."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll(check: Callable[[], T | None], timeout: float = 20.0, what: str = "condition") -> T:
    """Call ``check`` until it returns something other than None, or fail after ``timeout``.

    Only for waiting on another process (an ssh client setting up a forward,
    the server closing a port after its connection ended, a hook's record).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def free_port() -> int:
    """A loopback port nobody listens on at the moment of asking."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port: int = sock.getsockname()[1]
    return port
