"""A real HAProxy (Debian's haproxy) in front of spindlex servers: send-proxy-v2, round robin.

HAProxy reaches the servers from 127.0.0.1; a client binding another
loopback address (127.0.0.2 and up) can only be seen there through the
PROXY header.
"""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.processes import stop_process
from tests.support.waiting import free_port, poll

needs_haproxy = pytest.mark.skipif(
    shutil.which("haproxy") is None,
    reason="haproxy is not installed (Debian package haproxy; .ci/run installs it)",
)


def _config(port: int, backends: Sequence[int]) -> str:
    servers = "\n".join(
        f"    server s{i} 127.0.0.1:{backend} send-proxy-v2" for i, backend in enumerate(backends)
    )
    # Without health checks a dead server is found by its refused connect: retried on
    # the next server (redispatch), the client never sees it.
    return (
        textwrap.dedent(
            f"""
        defaults
            mode tcp
            retries 2
            option redispatch
            timeout connect 5s
            timeout client 120s
            timeout server 120s

        frontend ssh
            bind 127.0.0.1:{port}
            default_backend spindlex

        backend spindlex
            balance roundrobin
        """
        )
        + servers
        + "\n"
    )


def _listening(port: int) -> bool | None:
    """Whether 127.0.0.1:``port`` is in the kernel's table of listening sockets.

    Read there rather than by connecting: a probe connection would be proxied
    to a server, taking its round-robin turn and counting against its limits.
    """
    local = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as table:
        for row in table.readlines()[1:]:
            fields = row.split()
            if fields[1] == local and fields[3] == "0A":  # 0A: LISTEN
                return True
    return None


@contextmanager
def haproxy(tmp_path: Path, backends: Sequence[int]) -> Iterator[int]:
    """HAProxy in the foreground, in front of ``backends``; yields its port once it listens."""
    port = free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(_config(port, backends))
    check = subprocess.run(["haproxy", "-c", "-f", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    proc = subprocess.Popen(
        ["haproxy", "-db", "-f", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        poll(lambda: _listening(port), timeout=30, what="haproxy listening")
        yield port
    finally:
        stop_process(proc, timeout=10)
