"""``twistd spindlex`` options for what ``--exec`` sessions may forward beyond TCP ports.

- ``--x11-forwarding``: grant ``x11-req`` (``ssh -X``/``-Y``), off by default as
  sshd's ``X11Forwarding no``.
- ``--permit-user-environment``: set the ``environment="NAME=value"`` options
  of the authorized_keys line a client logged in with, as sshd's
  ``PermitUserEnvironment yes``; without it such lines still log in and the
  option is not used (sshd's default).

Agent forwarding and Unix-socket forwarding need no option of their own:
``--exec`` allows them, as it allows TCP forwarding, unless the key's line says
``no-agent-forwarding`` / ``no-port-forwarding`` / ``restrict``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.python import usage

if TYPE_CHECKING:
    from spindlex_tw.twistd.default_app import ServerConfig

FLAGS = [
    [
        "x11-forwarding",
        None,
        "With --exec: grant X11 forwarding (ssh -X/-Y): a display on the loopback from "
        ":10 up, DISPLAY and an xauth cookie for the program.",
    ],
    [
        "permit-user-environment",
        None,
        'With --exec: set the environment="NAME=value" options of the authorized_keys '
        "line a client logged in with (as sshd's PermitUserEnvironment yes).",
    ],
]


def apply(options: Any, config: ServerConfig) -> None:
    """Copy the flags into ``config``; each needs ``--exec``."""
    for flag in ("x11-forwarding", "permit-user-environment"):
        if options[flag] and config.exec_settings is None:
            raise usage.UsageError(f"--{flag} needs --exec: it is about the programs --exec runs")
    config.x11_forwarding = bool(options["x11-forwarding"])
    config.permit_user_environment = bool(options["permit-user-environment"])
