"""A Unix socket server of the test's own, and a client of it, for socket forwarding tests."""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path


class EchoServer:
    """Answers each connection's bytes, read to its end, upper-cased."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(4)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
                # A probe that connected and left at once is gone before the answer.
                with contextlib.suppress(OSError):
                    conn.sendall(data.upper())

    def close(self) -> None:
        self.sock.close()


def exchange(path: Path, payload: bytes) -> bytes:
    """Send ``payload``, end our side, and read the whole answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(30)
        conn.connect(str(path))
        conn.sendall(payload)
        conn.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
        return answer
