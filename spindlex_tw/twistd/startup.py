"""What ``twistd spindlex`` says while it starts: how to connect, or one line on what is wrong.

A new user of the embedded default learns the exact ``ssh``/``sftp`` command
to connect with, the host key fingerprint to compare, and whether commands
run (``--exec``). A start-up that cannot go on (a busy port, a state
directory that cannot be made) is one line on standard error and exit status
2, as a bad option is; never a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from twisted.internet.error import CannotListenError
from twisted.logger import Logger
from twisted.python import usage

from spindlex_tw.crypto.certificate import SSHCertificate
from spindlex_tw.crypto.pkey import PKey

log = Logger(namespace="spindlex_tw.service")

PREFIX = "twistd spindlex: error: "


def fail(message: str) -> NoReturn:
    """One line on the real standard error (twistd may have redirected ``sys.stderr``), exit 2."""
    stream = sys.__stderr__ or sys.stderr
    stream.write(PREFIX + " ".join(message.split()) + "\n")
    stream.flush()
    raise SystemExit(2)


def listen_error(description: str, error: BaseException | None) -> str:
    """``--listen tcp:22: address already in use``, from what the endpoint raised."""
    cause = getattr(error, "socketError", None) if isinstance(error, CannotListenError) else error
    reason = getattr(cause, "strerror", None) or str(cause or error)
    return f"--listen {description}: cannot listen: {reason[:1].lower()}{reason[1:]}"


def make_state_directory(directory: str) -> None:
    """Create ``directory`` (mode 0700), but never the home directory it would sit in.

    With ``HOME`` pointing nowhere (a service account, a container), making
    ``$HOME/.local/state/...`` would create that home, as root perhaps. The
    directory is made only below a home that exists (or, outside the home,
    below the parent of ``$XDG_STATE_HOME``); anything else is a
    ``usage.UsageError`` naming the path.
    """
    if os.path.isdir(directory):
        return
    home = os.path.abspath(os.path.expanduser("~"))
    state_home = os.environ.get("XDG_STATE_HOME")
    if os.path.commonpath([home, os.path.abspath(directory)]) == home or not state_home:
        anchor = home
    else:
        anchor = os.path.dirname(os.path.abspath(state_home))
    if not os.path.isdir(anchor):
        raise usage.UsageError(
            f"cannot create state directory {directory}: {anchor} does not exist "
            "(set XDG_STATE_HOME or HOME, or give --host-key)"
        )
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise usage.UsageError(
            f"cannot create state directory {directory}: {exc.strerror}"
        ) from exc


def keep_pidfile_out(options: usage.Options, served: str | None, state: str) -> None:
    """Move twistd's default ``twistd.pid`` out of the directory SFTP serves.

    twistd writes its pid file in the working directory, which the embedded
    default also serves: clients would see (and could delete) it. The file goes
    to the state directory instead; an explicit ``--pidfile`` elsewhere stays.
    """
    parent = getattr(options, "parent", None)
    if parent is None or served is None:
        return
    try:
        pidfile = parent["pidfile"]
    except KeyError:
        return
    if not pidfile or os.path.basename(pidfile) != "twistd.pid":
        return
    if os.path.commonpath([os.path.abspath(pidfile), served]) != served:
        return
    make_state_directory(state)
    parent["pidfile"] = os.path.join(state, "twistd.pid")


def connect_hints(
    addresses: Sequence[tuple[str, int]],
    user: str,
    host_keys: Sequence[PKey],
    exec_on: bool,
) -> list[str]:
    """The lines that tell a new user how to connect to the TCP ``addresses``."""
    lines = []
    for host, port in addresses:
        target = "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)
        shown = f"[{target}]" if ":" in target else target
        lines.append(f"connect with: sftp -P {port} {user}@{shown}")
        if exec_on:
            lines.append(f"          or: ssh -p {port} {user}@{shown}")
    for key in host_keys:
        if isinstance(key, SSHCertificate):
            # Clients trusting its CA need no fingerprint; the others see the plain key.
            continue
        lines.append(
            f"the server's host key is {key.get_name()} {key.get_fingerprint()}: "
            "ssh asks you to accept it on first connection; compare it"
        )
    if exec_on:
        lines.append("exec and shell are on (--exec): commands run as this server's user")
    else:
        lines.append(
            "SFTP only: exec, shell and pty requests are refused; start with --exec to run commands"
        )
    return lines


def log_hints(lines: Sequence[str]) -> None:
    for line in lines:
        log.info("{hint}", hint=line, event="hint")


def hint_user(one_time: tuple[str, str] | None, server: Any) -> str:
    """The login name to show: the one-time password's user, a password user, the keys' user."""
    if one_time is not None:
        return one_time[0]
    config = getattr(server, "config", None)
    passwords = getattr(config, "passwords", None)
    for source in getattr(passwords, "sources", ()):
        names = sorted(source.users())
        if names:
            return str(names[0])
    if getattr(config, "authorized_keys", None) is not None:
        return str(config.key_user)  # type: ignore[union-attr]
    return "USER"


def service_hints(spindle: Any) -> list[str]:
    """The hints for a started ``SpindleService``: its TCP ports, user, keys and --exec."""
    addresses = []
    for listener in spindle:
        port = getattr(listener, "port", None)
        description = getattr(listener, "description", "")
        # Behind a proxy, clients connect to the proxy's port, not this one.
        if port is None or description.startswith("haproxy:"):
            continue
        host = port.getHost()
        if hasattr(host, "port"):
            addresses.append((str(host.host), int(host.port)))
    server = spindle.server
    config = spindle.config
    exec_on = getattr(getattr(server, "config", None), "exec_settings", None) is not None
    return connect_hints(addresses, hint_user(config.one_time, server), config.host_keys, exec_on)
