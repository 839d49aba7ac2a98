"""What the session requests granted on a channel (RFC 4254 section 6), as plain data.

``tx/session.py`` writes these once a hook granted the request; applications
read them as attributes of the ``Channel`` (``channel.term``...), which keeps
them here, in its :class:`SessionFacts`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, overload

from spindlex_tw.core.requests import X11Request

_T = TypeVar("_T")


@dataclass
class SessionFacts:
    """The pty, environment and program of one session channel."""

    term: str | None = None  # None: no pty was granted
    term_size: tuple[int, int, int, int] = (80, 24, 0, 0)  # columns, rows, pixel w, pixel h
    term_modes: bytes = b""
    environment: dict[str, str] = field(default_factory=dict)
    command: bytes | None = None
    subsystem: str | None = None
    signals: list[str] = field(default_factory=list)
    started: bool = False  # exec, shell or subsystem granted (one per channel)
    # Forwarding granted to the session (tx/forwarding/agent.py, x11.py): the
    # agent socket's path (SSH_AUTH_SOCK) and the X display (DISPLAY) with the
    # client's x11-req, whose cookie goes into the program's xauth file.
    agent_socket: str | None = None
    x11_display: str | None = None
    x11_request: X11Request | None = None


class Fact(Generic[_T]):
    """An attribute of the owner that lives in the owner's ``facts`` (a SessionFacts)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, obj: None, owner: type) -> Fact[_T]: ...
    @overload
    def __get__(self, obj: object, owner: type) -> _T: ...
    def __get__(self, obj: Any, owner: type) -> Any:
        if obj is None:
            return self
        return getattr(obj.facts, self._name)

    def __set__(self, obj: Any, value: _T) -> None:
        setattr(obj.facts, self._name, value)
