"""What a test's clients need to log in: a host key they trust, a key pair and a password."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from spindlex_tw.crypto.pkey import Ed25519Key, PKey

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Credentials:
    """Fresh keys and a password, with their files in ``directory``.

    ``client_key_file`` is the private half in OpenSSH's format (mode 0600),
    which ssh, AsyncSSH and Paramiko all read; ``host_key`` is what the server
    under test presents, and :meth:`known_hosts_line` lets clients check it.
    """

    directory: Path
    username: str
    password: str
    host_key: PKey
    client_key: PKey
    client_key_file: Path

    @classmethod
    def generate(
        cls, directory: str | Path, username: str = "tester", password: str | None = None
    ) -> Credentials:
        folder = Path(directory).absolute()
        folder.mkdir(parents=True, exist_ok=True)
        client_key = Ed25519Key.generate()
        key_file = folder / "id_ed25519"
        client_key.save_to_file(key_file)
        key_file.with_suffix(".pub").write_text(client_key.get_openssh_string() + "\n")
        return cls(
            directory=folder,
            username=username,
            password=password if password is not None else secrets.token_urlsafe(16),
            host_key=Ed25519Key.generate(),
            client_key=client_key.get_public_key(),
            client_key_file=key_file,
        )

    @property
    def client_public_line(self) -> str:
        """The client key as an authorized_keys line."""
        return self.client_key.get_openssh_string()

    def known_hosts_line(self, port: int, host: str = HOST) -> str:
        """The server's key as a known_hosts line for ``host:port``."""
        return f"[{host}]:{port} {self.host_key.get_openssh_string()}"


class Reachable(Protocol):
    """What a client helper needs of a server under test (``RunningServer`` has it)."""

    host: str
    port: int
    credentials: Credentials
    known_hosts: Path

    @property
    def username(self) -> str: ...

    @property
    def password(self) -> str: ...
