"""Session channel requests (RFC 4254 section 6) mapped onto the Application hooks."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from spindlex_tw.core import events as ev
from spindlex_tw.core import wire
from spindlex_tw.core.errors import DecodeError
from spindlex_tw.tx.hooks import call_hook

if TYPE_CHECKING:
    from spindlex_tw.tx.application import Application
    from spindlex_tw.tx.channel import Channel
    from spindlex_tw.tx.protocol import SSHServerProtocol

log = Logger(namespace="spindlex_tw.session")

# Each parser turns the request data into (hook, args, side effect on grant).
Parsed = tuple[Callable[..., Any], tuple[Any, ...], Callable[[], None] | None]


def _pty(server: Application, channel: Channel, r: wire.Reader) -> Parsed:
    term = r.text()
    width, height, pixelwidth, pixelheight = r.uint32(), r.uint32(), r.uint32(), r.uint32()
    modes = r.string()

    def granted() -> None:
        channel.term = term
        channel.term_size = (width, height, pixelwidth, pixelheight)
        channel.term_modes = modes

    return (
        server.check_channel_pty_request,
        (channel, term, width, height, pixelwidth, pixelheight, modes),
        granted,
    )


def _env(server: Application, channel: Channel, r: wire.Reader) -> Parsed:
    name, value = r.text(), r.text()

    def granted() -> None:
        channel.environment[name] = value

    return server.check_channel_env_request, (channel, name, value), granted


def _exec(server: Application, channel: Channel, r: wire.Reader) -> Parsed:
    command = r.string()
    channel.command = command
    return server.check_channel_exec_request, (channel, command), None


def _shell(server: Application, channel: Channel, r: wire.Reader) -> Parsed:
    return server.check_channel_shell_request, (channel,), None


def _subsystem(server: Application, channel: Channel, r: wire.Reader) -> Parsed:
    name = r.text()
    channel.subsystem = name
    return server.check_channel_subsystem_request, (channel, name), None


def _window_change(server: Application, channel: Channel, r: wire.Reader) -> Parsed:
    size = (r.uint32(), r.uint32(), r.uint32(), r.uint32())

    def granted() -> None:
        channel.term_size = size

    return server.check_channel_window_change_request, (channel, *size), granted


def _signal(server: Application, channel: Channel, r: wire.Reader) -> Parsed:
    name = r.ascii()

    def granted() -> None:
        channel.signals.append(name)

    return server.check_channel_signal_request, (channel, name), granted


def _x11(server: Application, channel: Channel, r: wire.Reader) -> Parsed:
    single = r.boolean()
    auth_protocol = r.text()
    cookie = r.string()
    screen = r.uint32()
    return server.check_channel_x11_request, (channel, single, auth_protocol, cookie, screen), None


_SESSION_REQUESTS: dict[str, Callable[[Application, Channel, wire.Reader], Parsed]] = {
    "pty-req": _pty,
    "env": _env,
    "exec": _exec,
    "shell": _shell,
    "subsystem": _subsystem,
    "window-change": _window_change,
    "signal": _signal,
    "x11-req": _x11,
}
# Requests that start the channel's program: only one per channel.
_STARTERS = frozenset({"exec", "shell", "subsystem"})


def handle_channel_request(
    conn: SSHServerProtocol, channel: Channel, event: ev.ChannelRequestReceived
) -> None:
    """Ask the hook for a session request and reply in order; unknown ones fail."""
    parser = _SESSION_REQUESTS.get(event.name) if channel.kind == "session" else None
    if parser is None or (event.name in _STARTERS and channel.started):
        conn.channel_reply(channel, event.want_reply, False)
        return
    reader = wire.Reader(event.data)
    try:
        hook, args, on_grant = parser(conn.server, channel, reader)
        reader.done()
    except DecodeError as exc:
        log.info(
            "malformed {name} request from {peer}: {error}",
            name=event.name,
            peer=conn.peer,
            error=exc.description,
        )
        conn.channel_reply(channel, event.want_reply, False)
        return
    if event.name in _STARTERS:
        channel.started = True
        channel.hold_output()
    d = call_hook(
        conn.reactor, hook, *args, denied=False, timeout=conn.factory.settings.hook_timeout
    )

    def decided(result: object) -> None:
        granted = result is True
        if granted and on_grant is not None:
            on_grant()
        if not granted and event.name in _STARTERS:
            channel.started = False
        conn.channel_reply(channel, event.want_reply, granted)
        if event.name in _STARTERS:
            channel.release_output()

    d.addCallback(decided)
