"""The AsyncSSH server the benchmarks compare with, in a process of its own.

    python -m bench.asyncssh_server --host-key FILE --authorized FILE --root DIR

Prints ``PORT <n>`` once listening on 127.0.0.1: key logins for the listed
keys, the password "secret" for any user, ``true`` as a command, and
AsyncSSH's own SFTP server chrooted to DIR.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import asyncssh


class _Server(asyncssh.SSHServer):
    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return password == "secret"


def _process(process: Any) -> None:
    process.exit(0)


async def serve(args: argparse.Namespace) -> None:
    root = args.root
    server = await asyncssh.listen(
        "127.0.0.1",
        0,
        server_factory=_Server,
        server_host_keys=[args.host_key],
        authorized_client_keys=args.authorized,
        process_factory=_process,
        sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=root),
        allow_scp=False,
    )
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    await server.wait_closed()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host-key", required=True)
    parser.add_argument("--authorized", required=True)
    parser.add_argument("--root", required=True)
    args = parser.parse_args()
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
