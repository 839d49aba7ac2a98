"""A ``twistd spindlex --exec`` server whose authorized_keys holds one new key per option set."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.support.harness import OpenSSH
from tests.support.twistd import Twistd, isolated_home


@contextmanager
def keyed_twistd(
    tmp: Path, lines: Mapping[str, str], args: Sequence[str] = ()
) -> Iterator[tuple[Twistd, OpenSSH, dict[str, Path]]]:
    """The server, an OpenSSH client for it, and each key's private file by name.

    ``lines`` maps a name to the options written before that key's line.
    """
    keys: dict[str, Path] = {}
    text = []
    for name, options in lines.items():
        path = tmp / f"id_{name}"
        subprocess.run(
            ["ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-f", str(path)],
            check=True,
            timeout=30,
        )
        keys[name] = path
        text.append(options + path.with_suffix(".pub").read_text())
    authorized = tmp / "authorized_keys"
    authorized.write_text("".join(text))
    server = Twistd(
        [
            "spindlex",
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--exec",
            "--authorized-keys",
            str(authorized),
            *args,
        ],
        cwd=tmp,
        env=isolated_home(tmp),
    )
    try:
        [port] = server.ports()
        yield server, OpenSSH(tmp, port), keys
    finally:
        server.kill()
