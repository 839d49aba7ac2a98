"""Thousands of idle authenticated connections held by one server.

The connections come from a few client processes (``python -m bench.scale
HOST PORT USER KEY COUNT``), each running AsyncSSH's client on one event loop
with a bounded number of logins in flight, and holding what it opened until
its standard input closes. The figures: the rate at which the server accepted
and authenticated them all, its CPU per login, the growth of its process
tree's PSS per connection, and its CPU per second while they idle.

Every process here raises its soft descriptor limit to the hard one; the
servers the bench starts inherit the raised limit from it (see
:func:`raise_fd_limit`).
"""

from __future__ import annotations

import asyncio
import resource
import subprocess
import sys
import time
from typing import Any

import asyncssh

from bench import procstat
from bench.clients import KEX
from bench.scenarios import Context
from bench.servers import ROOT, Server, child_env

# Client processes, and logins in flight in each: together within every server's
# limit on unauthenticated connections from one address (sshd's MaxStartups 200).
_CLIENTS = 4
_IN_FLIGHT = 16
_HOLD_SECONDS = 3.0
_TIMEOUT = 900.0


def raise_fd_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; returns the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # "Unlimited" is not a descriptor count the kernel takes: its usual ceiling then.
    wanted = hard if hard != resource.RLIM_INFINITY else 1 << 20
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError):
        return soft
    return wanted


def idle_at_scale(server: Server, ctx: Context, resting: int) -> dict[str, float]:
    count = ctx.sizes.scale_sshd if server.name == "openssh" else ctx.sizes.scale
    limit = raise_fd_limit()
    if count + 64 > limit:
        raise RuntimeError(f"{count} connections need more descriptors than {limit}")
    shares = [count // _CLIENTS + (i < count % _CLIENTS) for i in range(_CLIENTS)]
    pss_before = procstat.pss_bytes(server.pid)
    cpu_before = procstat.cpu_seconds(server.pid)
    start = time.perf_counter()
    clients = [_spawn(server, ctx, share) for share in shares if share]
    try:
        for client in clients:
            line = _read_ready(client)
            if not line.startswith("READY"):
                raise RuntimeError(f"{server.name}: a client holding connections said {line!r}")
        wall = time.perf_counter() - start
        time.sleep(1.0)  # the last logins' callbacks
        login_cpu = procstat.cpu_seconds(server.pid) - cpu_before
        pss_after = procstat.pss_bytes(server.pid)
        idle_before = procstat.cpu_seconds(server.pid)
        time.sleep(_HOLD_SECONDS)
        idle_cpu = procstat.cpu_seconds(server.pid) - idle_before
    finally:
        for client in clients:
            _stop(client)
    server.settle(resting, timeout=120)
    return {
        "scale_connections": float(count),
        "scale_logins_per_s": count / wall,
        "scale_login_cpu_ms": login_cpu / count * 1000,
        "scale_kib_per_conn": (pss_after - pss_before) / count / 1024,
        "scale_idle_cpu_ms_per_s": idle_cpu / _HOLD_SECONDS * 1000,
    }


def _spawn(server: Server, ctx: Context, count: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "bench.scale", "127.0.0.1", str(server.port), server.user]
    cmd += [str(ctx.keys.client_key), str(count)]
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=child_env({}),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def _read_ready(client: subprocess.Popen[bytes]) -> str:
    """The client's one line: READY once all its connections are up, or why not."""
    assert client.stdout is not None
    try:
        return client.stdout.readline().decode(errors="replace").strip() or "(nothing)"
    except OSError as exc:
        return str(exc)


def _stop(client: subprocess.Popen[bytes]) -> None:
    """Close its standard input (it closes its connections and exits); kill it if it hangs."""
    assert client.stdin is not None
    client.stdin.close()
    try:
        client.wait(120)
    except subprocess.TimeoutExpired:
        client.kill()
        client.wait(15)


# --- the client process ------------------------------------------------------------------------


async def _hold(host: str, port: int, user: str, key: str, count: int) -> None:
    gate = asyncio.Semaphore(_IN_FLIGHT)

    async def one() -> Any:
        async with gate:
            return await asyncssh.connect(
                host,
                port,
                username=user,
                client_keys=[key],
                known_hosts=None,
                agent_path=None,
                config=None,
                kex_algs=[KEX],
                server_host_key_algs=["ssh-ed25519"],
                preferred_auth="publickey",
                login_timeout=_TIMEOUT,
            )

    conns = await asyncio.wait_for(asyncio.gather(*(one() for _ in range(count))), _TIMEOUT)
    print("READY", flush=True)
    # Hold them until the bench closes our standard input.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)
    for conn in conns:
        conn.close()
    await asyncio.gather(*(conn.wait_closed() for conn in conns))


def main() -> None:
    raise_fd_limit()
    host, port, user, key, count = sys.argv[1:6]
    try:
        asyncio.run(_hold(host, int(port), user, key, int(count)))
    except (TimeoutError, OSError, asyncssh.Error) as exc:
        print(f"FAILED {exc!r}", flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
