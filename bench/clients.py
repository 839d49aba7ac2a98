"""Client command lines: OpenSSH's ssh and sftp, isolated from the user's config."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

# Every server gets the same key exchange and host key type, so a login costs
# the same protocol work everywhere (OpenSSH 9.2 would otherwise pick sntrup761
# with sshd, which the Python servers do not offer).
KEX = "curve25519-sha256"
CLIENT_TIMEOUT = 600.0


@dataclass(frozen=True)
class Keys:
    work: Path

    @property
    def client_key(self) -> Path:
        return self.work / "client_ed25519"

    @property
    def host_key(self) -> Path:
        return self.work / "host_ed25519"

    @property
    def authorized(self) -> Path:
        return self.work / "authorized_keys"

    def create(self) -> None:
        for key in (self.client_key, self.host_key):
            if not key.exists():
                subprocess.run(
                    ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True
                )
        self.authorized.write_text(Path(f"{self.client_key}.pub").read_text())


@dataclass(frozen=True)
class Algorithms:
    """A cipher, and a MAC for the non-AEAD ones."""

    cipher: str
    mac: str | None = None

    @property
    def label(self) -> str:
        short = self.cipher.split("@")[0]
        return f"{short}+{self.mac.split('@')[0]}" if self.mac else short

    def options(self) -> list[str]:
        opts = ["-o", f"Ciphers={self.cipher}"]
        if self.mac:
            opts += ["-o", f"MACs={self.mac}"]
        return opts


DEFAULT = Algorithms("aes128-gcm@openssh.com")


def base_options(keys: Keys, port: int, algorithms: Algorithms) -> list[str]:
    return [
        "-F",
        "/dev/null",
        "-i",
        str(keys.client_key),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "Compression=no",
        "-o",
        f"KexAlgorithms={KEX}",
        "-o",
        "HostKeyAlgorithms=ssh-ed25519",
        *algorithms.options(),
    ]


def ssh_command(keys: Keys, user: str, port: int, *command: str) -> list[str]:
    return [
        "ssh",
        *base_options(keys, port, DEFAULT),
        "-p",
        str(port),
        f"{user}@127.0.0.1",
        *command,
    ]


def ssh_password_command(
    keys: Keys, user: str, port: int, password: str, *command: str
) -> list[str]:
    # ssh keeps the first value of an option: these override base_options().
    first = ["-o", "BatchMode=no", "-o", "PubkeyAuthentication=no"]
    first += ["-o", "PreferredAuthentications=password"]
    return [
        "sshpass",
        "-p",
        password,
        "ssh",
        *first,
        *base_options(keys, port, DEFAULT),
        "-p",
        str(port),
        f"{user}@127.0.0.1",
        *command,
    ]


def sftp_command(
    keys: Keys, user: str, port: int, batch: Path, algorithms: Algorithms
) -> list[str]:
    return [
        "sftp",
        "-q",
        *base_options(keys, port, algorithms),
        "-P",
        str(port),
        "-b",
        str(batch),
        f"{user}@127.0.0.1",
    ]


def run(cmd: list[str]) -> None:
    result = subprocess.run(
        cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=CLIENT_TIMEOUT
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd[:1])} failed ({result.returncode}): "
            f"{result.stderr.decode(errors='replace').strip()[-500:]}"
        )
