"""Session channel requests (RFC 4254 section 6) mapped onto the Application hooks."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from spindlex_tw.core import events as ev
from spindlex_tw.core.requests import (
    AgentForwardRequest,
    ChannelRequest,
    EnvRequest,
    ExecRequest,
    Malformed,
    PtyRequest,
    ShellRequest,
    SignalRequest,
    SubsystemRequest,
    WindowChange,
    X11Request,
)
from spindlex_tw.tx import audit
from spindlex_tw.tx.forwarding.agent import forward_agent
from spindlex_tw.tx.forwarding.x11 import forward_x11
from spindlex_tw.tx.hooks import call_hook

if TYPE_CHECKING:
    from spindlex_tw.tx.application import Application
    from spindlex_tw.tx.channel import Channel
    from spindlex_tw.tx.interfaces import Connection

log = Logger(namespace="spindlex_tw.session")

# Each request maps to (hook, args, side effect on grant). The side effect may
# answer False: the hook granted, but what it grants could not be set up.
Decided = tuple[Callable[..., Any], tuple[Any, ...], Callable[[], bool | None] | None]


def _hook_call(conn: Connection, channel: Channel, request: ChannelRequest) -> Decided:
    """The hook that decides ``request``, its arguments, and what a grant records."""
    server: Application = conn.server
    match request:
        case PtyRequest():
            pty = request
            size = (pty.cols, pty.rows, pty.width, pty.height)

            def pty_granted() -> None:
                channel.term = pty.term
                channel.term_size = size
                channel.term_modes = pty.modes

            return (
                server.check_channel_pty_request,
                (channel, pty.term, *size, pty.modes),
                pty_granted,
            )
        case EnvRequest():
            env = request

            def env_granted() -> None:
                channel.environment[env.name] = env.value

            return server.check_channel_env_request, (channel, env.name, env.value), env_granted
        case ExecRequest():
            channel.command = request.command
            return server.check_channel_exec_request, (channel, request.command), None
        case ShellRequest():
            return server.check_channel_shell_request, (channel,), None
        case SubsystemRequest():
            channel.subsystem = request.name
            return server.check_channel_subsystem_request, (channel, request.name), None
        case WindowChange():
            new_size = (request.cols, request.rows, request.width, request.height)

            def resized() -> None:
                channel.term_size = new_size

            return server.check_channel_window_change_request, (channel, *new_size), resized
        case SignalRequest():
            signal = request.name

            def signalled() -> None:
                channel.signals.append(signal)

            return server.check_channel_signal_request, (channel, signal), signalled
        case X11Request():
            x11_request = request
            x11 = (request.single_connection, request.auth_protocol, request.auth_cookie)

            def x11_granted() -> bool:
                return forward_x11(conn, channel, x11_request)

            return server.check_channel_x11_request, (channel, *x11, request.screen), x11_granted
        case AgentForwardRequest():

            def agent_granted() -> bool:
                return forward_agent(conn, channel)

            return server.check_channel_forward_agent_request, (channel,), agent_granted


# Requests that start the channel's program: only one per channel.
_STARTERS = frozenset({"exec", "shell", "subsystem"})
# Requests whose refusal is audited: what a user sees fail (env is refused too
# often, by design, to be worth an event).
_AUDITED_REFUSALS = _STARTERS | {"pty-req", "x11-req", AgentForwardRequest.NAME}


def handle_channel_request(
    conn: Connection, channel: Channel, event: ev.ChannelRequestReceived
) -> None:
    """Ask the hook for a session request and reply in order; unknown ones fail."""
    request = event.request
    if (
        channel.kind != "session"
        or request is None
        or (event.name in _STARTERS and channel.started)
    ):
        conn.channel_reply(channel, event.want_reply, False)
        return
    if isinstance(request, Malformed):
        log.info(
            "malformed {name} request from {peer}: {error}",
            name=event.name,
            peer=conn.peer,
            error=request.description,
        )
        conn.channel_reply(channel, event.want_reply, False)
        return
    hook, args, on_grant = _hook_call(conn, channel, request)
    if event.name in _STARTERS:
        channel.started = True
        channel.hold_output()
    d = call_hook(
        conn.reactor, hook, *args, denied=False, timeout=conn.factory.settings.hook_timeout
    )

    def decided(result: object) -> None:
        granted = result is True
        if granted and on_grant is not None:
            granted = on_grant() is not False
        if not granted and event.name in _STARTERS:
            channel.started = False
        if granted and event.name in ("exec", "shell"):
            audit.started(conn, event.name, channel.command)
        elif not granted and event.name in _AUDITED_REFUSALS:
            decider = getattr(hook, "__name__", "the application")
            audit.request_refused(conn, event.name, f"refused by {decider}")
        conn.channel_reply(channel, event.want_reply, granted)
        if event.name in _STARTERS:
            channel.release_output()

    d.addCallback(decided)
