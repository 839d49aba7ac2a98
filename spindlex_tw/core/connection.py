"""The ssh-connection service (RFC 4254), server side, sans-IO.

Channel multiplexing, flow control in both directions and in-order replies to
global and channel requests. Output that the peer's window cannot take yet is
queued per channel, with any EOF, request or CLOSE behind it kept in order.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from spindlex_tw.core import requests, wire
from spindlex_tw.core.channels import ChannelState
from spindlex_tw.core.errors import ProtocolError
from spindlex_tw.core.events import (
    ChannelClosed,
    ChannelDataReceived,
    ChannelEOFReceived,
    ChannelOpened,
    ChannelOpenFailed,
    ChannelOpenRequested,
    ChannelRequestReceived,
    ChannelWritable,
    Event,
    GlobalRequestReceived,
)
from spindlex_tw.protocol import constants as c

if TYPE_CHECKING:
    from spindlex_tw.core.transport import ServerTransport

_MAX_WINDOW = 0xFFFFFFFF
_DATA_HEADER = struct.Struct(">BII")  # CHANNEL_DATA: recipient, data length
_EXTENDED_HEADER = struct.Struct(">BIII")  # EXTENDED_DATA: recipient, type, data length


@dataclass(frozen=True)
class ChannelLimits:
    max_channels: int = 100
    window: int = 2 * 1024 * 1024  # OpenSSH's session window
    max_packet: int = 32768
    max_pending_requests: int = 64  # unanswered global or per-channel requests


class ConnectionService:
    """Server side of ssh-connection for one authenticated connection."""

    def __init__(self, transport: ServerTransport, limits: ChannelLimits) -> None:
        self._transport = transport
        self._limits = limits
        self._channels: dict[int, ChannelState] = {}
        self._next_id = 0
        # (id, reply or None), in request order. A list: an empty deque takes 600
        # bytes, on every connection, for requests most clients never send.
        self._global_replies: list[tuple[int, bytes | None]] = []
        self._next_request_id = 0
        self._pending_opens: dict[int, int] = {}  # peer's channel id -> our id, until answered
        self.no_more_sessions = False

    # --- input ------------------------------------------------------------------------

    def handle(self, msg: int, payload: bytes | memoryview) -> list[Event]:
        handler = _HANDLERS.get(msg)
        if handler is None:
            if msg in (c.SSH_MSG_USERAUTH_REQUEST,):
                return []  # RFC 4252 5.1: ignored once authenticated
            if 80 <= msg <= 127:
                return self._transport.unimplemented()
            raise ProtocolError(f"unexpected message {msg} after authentication")
        reader = wire.Reader(payload, 1)
        return handler(self, reader)

    def _global_request(self, reader: wire.Reader) -> list[Event]:
        name = reader.ascii()
        want_reply = reader.boolean()
        data = reader.rest()
        if name == "no-more-sessions@openssh.com":
            self.no_more_sessions = True
            return []
        request = requests.parse_global_request(name, data)
        if not want_reply:
            return [GlobalRequestReceived(name, False, data, -1, request)]
        if len(self._global_replies) >= self._limits.max_pending_requests:
            raise ProtocolError("too many unanswered global requests")
        request_id = self._next_request_id
        self._next_request_id += 1
        self._global_replies.append((request_id, None))
        return [GlobalRequestReceived(name, True, data, request_id, request)]

    def _open(self, reader: wire.Reader) -> list[Event]:
        kind = reader.ascii()
        peer_id = reader.uint32()
        window = reader.uint32()
        max_packet = reader.uint32()
        data = reader.rest()
        reason, text = 0, ""
        if kind == c.CHANNEL_SESSION and self.no_more_sessions:
            reason, text = c.SSH_OPEN_ADMINISTRATIVELY_PROHIBITED, "no more sessions"
        elif len(self._channels) >= self._limits.max_channels:
            reason, text = c.SSH_OPEN_RESOURCE_SHORTAGE, "too many channels"
        elif max_packet == 0:
            raise ProtocolError("channel open with zero maximum packet size")
        elif peer_id in self._pending_opens:
            raise ProtocolError(f"channel {peer_id} opened twice")
        if reason:
            self._send_open_failure(peer_id, reason, text)
            return []
        state = self._new_channel(kind, peer_id)
        state.remote_window = window
        state.remote_max_packet = max_packet
        self._pending_opens[peer_id] = state.local_id
        return [ChannelOpenRequested(kind, peer_id, data, requests.parse_channel_open(kind, data))]

    def _open_confirmation(self, reader: wire.Reader) -> list[Event]:
        state = self._channel(reader.uint32())
        if state.confirmed:
            raise ProtocolError("channel confirmed twice")
        state.peer_id = reader.uint32()
        state.remote_window = reader.uint32()
        state.remote_max_packet = reader.uint32() or 1
        state.confirmed = True
        return [ChannelOpened(state.local_id), *self._pump(state)]

    def _open_failure(self, reader: wire.Reader) -> list[Event]:
        state = self._channel(reader.uint32())
        if state.confirmed:
            raise ProtocolError("open failure for a confirmed channel")
        reason = reader.uint32()
        text = reader.string().decode("utf-8", "replace")
        del self._channels[state.local_id]
        return [ChannelOpenFailed(state.local_id, reason, text)]

    def _window_adjust(self, reader: wire.Reader) -> list[Event]:
        state = self._live(reader.uint32())
        if state is None:
            return []
        state.remote_window = min(state.remote_window + reader.uint32(), _MAX_WINDOW)
        had_backlog = state.buffered > 0
        events = self._pump(state)
        if had_backlog:
            events.append(ChannelWritable(state.local_id))
        return events

    def _data(self, reader: wire.Reader) -> list[Event]:
        return self._incoming(reader, 0)

    def _extended_data(self, reader: wire.Reader) -> list[Event]:
        return self._incoming(reader, None)

    def _incoming(self, reader: wire.Reader, stream: int | None) -> list[Event]:
        state = self._live(reader.uint32())
        if stream is None:
            stream = reader.uint32()
        data = reader.string()
        reader.done()
        if state is None or state.eof_received:
            return []
        if len(data) > state.local_window or len(data) > state.local_max_packet:
            # The peer ignored our window: it loses the channel, not the connection.
            return self._abort(state, "peer sent more data than the channel window allows")
        state.local_window -= len(data)
        return [ChannelDataReceived(state.local_id, data, stream)]

    def _eof(self, reader: wire.Reader) -> list[Event]:
        state = self._live(reader.uint32())
        if state is None or state.eof_received:
            return []
        state.eof_received = True
        return [ChannelEOFReceived(state.local_id)]

    def _close(self, reader: wire.Reader) -> list[Event]:
        state = self._channel(reader.uint32())
        if state.close_received:
            raise ProtocolError("channel closed twice")
        state.close_received = True
        state.output.clear()
        state.buffered = 0
        if not state.close_sent:
            self._send_close(state)
        del self._channels[state.local_id]
        if state.aborted:
            return []  # already reported when we dropped it
        return [ChannelClosed(state.local_id)]

    def _request(self, reader: wire.Reader) -> list[Event]:
        state = self._live(reader.uint32())
        name = reader.ascii()
        want_reply = reader.boolean()
        data = reader.rest()
        if state is None:
            return []
        if want_reply:
            if len(state.pending_replies) >= self._limits.max_pending_requests:
                raise ProtocolError("too many unanswered channel requests")
            state.pending_replies.append(None)
        request = requests.parse_channel_request(name, data)
        return [ChannelRequestReceived(state.local_id, name, want_reply, data, request)]

    def _reply_ignored(self, reader: wire.Reader) -> list[Event]:
        return []  # we send no requests that want replies

    # --- answers and output from the adapter ------------------------------------------

    def global_reply(self, request_id: int, success: bool, data: bytes = b"") -> None:
        """Answer a global request; replies leave in the order requests came."""
        msg = c.SSH_MSG_REQUEST_SUCCESS if success else c.SSH_MSG_REQUEST_FAILURE
        payload = wire.byte(msg) + (data if success else b"")
        for index, (rid, _) in enumerate(self._global_replies):
            if rid == request_id:
                self._global_replies[index] = (rid, payload)
                break
        while self._global_replies and self._global_replies[0][1] is not None:
            ready = self._global_replies.pop(0)[1]
            assert ready is not None
            self._transport.send(ready)

    def accept_open(self, peer_id: int) -> int:
        """Confirm the peer's channel open; returns our channel id."""
        state = self._pending_open(peer_id)
        state.confirmed = True
        self._transport.send(
            wire.byte(c.SSH_MSG_CHANNEL_OPEN_CONFIRMATION)
            + wire.uint32(state.peer_id)
            + wire.uint32(state.local_id)
            + wire.uint32(state.local_window)
            + wire.uint32(state.local_max_packet)
        )
        return state.local_id

    def reject_open(self, peer_id: int, reason: int, description: str) -> None:
        state = self._pending_open(peer_id)
        del self._channels[state.local_id]
        self._send_open_failure(peer_id, reason, description)

    def open_channel(self, kind: str, data: bytes) -> int:
        """Open a channel towards the peer (forwarded-tcpip); returns our id."""
        state = self._new_channel(kind, 0)
        self._transport.send(
            wire.byte(c.SSH_MSG_CHANNEL_OPEN)
            + wire.string(kind)
            + wire.uint32(state.local_id)
            + wire.uint32(state.local_window)
            + wire.uint32(state.local_max_packet)
            + data
        )
        return state.local_id

    def channel_reply(self, channel_id: int, success: bool) -> None:
        """Answer the oldest unanswered request of a channel, in order."""
        state = self._channels.get(channel_id)
        if state is None:
            return
        for index, pending in enumerate(state.pending_replies):
            if pending is None:
                state.pending_replies[index] = success
                break
        while state.pending_replies and state.pending_replies[0] is not None:
            ok = state.pending_replies.popleft()
            if state.open:
                msg = c.SSH_MSG_CHANNEL_SUCCESS if ok else c.SSH_MSG_CHANNEL_FAILURE
                self._transport.send(wire.byte(msg) + wire.uint32(state.peer_id))

    def send_data(self, channel_id: int, data: bytes, stream: int = 0) -> None:
        """Queue data (stream 0) or extended data (1 = stderr) and send what the window allows."""
        self.send_parts(channel_id, (data,), stream)

    def send_parts(
        self, channel_id: int, parts: Iterable[bytes | bytearray | memoryview], stream: int = 0
    ) -> None:
        """:meth:`send_data` for data in pieces (a header and a body, say), without joining
        them first: packets are cut across the pieces."""
        state = self._channels.get(channel_id)
        if state is None or not state.open or state.eof_sent or state.close_requested:
            return
        for data in parts:
            if data:
                state.output.append((stream, memoryview(data)))
                state.buffered += len(data)
        self._pump(state)

    def send_request(self, channel_id: int, name: str, data: bytes = b"") -> None:
        """A request without reply (exit-status, exit-signal, eow@openssh.com), queued in order."""
        self._queue_message(
            channel_id,
            wire.byte(c.SSH_MSG_CHANNEL_REQUEST)
            + wire.uint32(0)
            + wire.string(name)
            + wire.boolean(False)
            + data,
        )

    def send_eof(self, channel_id: int) -> None:
        state = self._channels.get(channel_id)
        if state is not None and not state.eof_sent:
            state.eof_sent = True
            self._queue_message(channel_id, wire.byte(c.SSH_MSG_CHANNEL_EOF) + wire.uint32(0))

    def close_channel(self, channel_id: int) -> None:
        """Send CLOSE once everything queued before it has gone out."""
        state = self._channels.get(channel_id)
        if state is None or state.close_requested or state.close_sent:
            return
        state.close_requested = True
        self._pump(state)

    def consume(self, channel_id: int, count: int) -> None:
        """The application took ``count`` received bytes: reopen the peer's window."""
        state = self._channels.get(channel_id)
        if state is None or not state.open:
            return
        state.consumed += count
        # Adjust in large steps, as OpenSSH does, to keep WINDOW_ADJUSTs rare.
        if state.consumed >= self._limits.window // 2:
            self._transport.send(
                wire.byte(c.SSH_MSG_CHANNEL_WINDOW_ADJUST)
                + wire.uint32(state.peer_id)
                + wire.uint32(state.consumed)
            )
            state.local_window += state.consumed
            state.consumed = 0

    def discard(self) -> None:
        """The connection is gone: drop every channel and the output queued for it.

        At once, not when the collector finds the connection's reference cycles:
        a peer that read nothing may have left megabytes queued per channel.
        """
        self._channels.clear()
        self._pending_opens.clear()
        self._global_replies.clear()

    def buffered(self, channel_id: int) -> int:
        state = self._channels.get(channel_id)
        return state.buffered if state is not None else 0

    def channel_ids(self) -> list[int]:
        return list(self._channels)

    def peer_id(self, channel_id: int) -> int | None:
        state = self._channels.get(channel_id)
        return state.peer_id if state is not None else None

    # --- internals ------------------------------------------------------------------------

    def _new_channel(self, kind: str, peer_id: int) -> ChannelState:
        local_id = self._next_id
        while local_id in self._channels:
            local_id = (local_id + 1) & 0xFFFFFFFF
        self._next_id = (local_id + 1) & 0xFFFFFFFF
        state = ChannelState(
            local_id=local_id,
            peer_id=peer_id,
            kind=kind,
            local_window=self._limits.window,
            local_max_packet=self._limits.max_packet,
        )
        self._channels[local_id] = state
        return state

    def _pending_open(self, peer_id: int) -> ChannelState:
        return self._channels[self._pending_opens.pop(peer_id)]

    def _channel(self, local_id: int) -> ChannelState:
        state = self._channels.get(local_id)
        if state is None:
            raise ProtocolError(f"message for unknown channel {local_id}")
        return state

    def _live(self, local_id: int) -> ChannelState | None:
        """A channel the peer may still talk on; ``None`` once we sent CLOSE (late messages)."""
        state = self._channel(local_id)
        if not state.confirmed:
            raise ProtocolError(f"message for unconfirmed channel {local_id}")
        return None if state.close_sent else state

    def _queue_message(self, channel_id: int, message: bytes) -> None:
        state = self._channels.get(channel_id)
        if state is None or not state.open or state.close_requested:
            return
        state.output.append(message)
        self._pump(state)

    def _pump(self, state: ChannelState) -> list[Event]:
        """Send queued output in order while the peer's window and packet size allow."""
        if not state.confirmed:
            return []
        send = self._transport.send
        send_parts = self._transport.send_parts
        peer_id = state.peer_id
        output = state.output
        while output:
            item = output[0]
            if isinstance(item, bytes):
                output.popleft()
                # Messages were queued with a placeholder recipient: put the peer's id in.
                send(item[:1] + wire.uint32(peer_id) + item[5:])
                continue
            stream = item[0]
            allowed = min(state.remote_window, state.remote_max_packet)
            if allowed <= 0:
                break
            # One packet from as many queued pieces of this stream as fit.
            parts: list[bytes | memoryview] = [b""]
            size = 0
            while size < allowed and output:
                item = output[0]
                if isinstance(item, bytes) or item[0] != stream:
                    break
                view = item[1]
                room = allowed - size
                if len(view) <= room:
                    output.popleft()
                else:
                    output[0] = (stream, view[room:])
                    view = view[:room]
                parts.append(view)
                size += len(view)
            if stream:
                parts[0] = _EXTENDED_HEADER.pack(
                    c.SSH_MSG_CHANNEL_EXTENDED_DATA, peer_id, stream, size
                )
            else:
                parts[0] = _DATA_HEADER.pack(c.SSH_MSG_CHANNEL_DATA, peer_id, size)
            send_parts(parts)  # copied once, into the packet that is then sealed in place
            state.remote_window -= size
            state.buffered -= size
        if not output and state.close_requested and not state.close_sent:
            self._send_close(state)
        return []

    def _send_close(self, state: ChannelState) -> None:
        state.close_sent = True
        self._transport.send(wire.byte(c.SSH_MSG_CHANNEL_CLOSE) + wire.uint32(state.peer_id))

    def _send_open_failure(self, peer_id: int, reason: int, description: str) -> None:
        self._transport.send(
            wire.byte(c.SSH_MSG_CHANNEL_OPEN_FAILURE)
            + wire.uint32(peer_id)
            + wire.uint32(reason)
            + wire.string(description)
            + wire.string(b"")
        )

    def _abort(self, state: ChannelState, error: str) -> list[Event]:
        state.aborted = True
        state.output.clear()
        state.buffered = 0
        self._send_close(state)
        return [ChannelClosed(state.local_id, error)]


_HANDLERS: dict[int, Callable[[ConnectionService, wire.Reader], list[Event]]] = {
    c.SSH_MSG_GLOBAL_REQUEST: ConnectionService._global_request,
    c.SSH_MSG_REQUEST_SUCCESS: ConnectionService._reply_ignored,
    c.SSH_MSG_REQUEST_FAILURE: ConnectionService._reply_ignored,
    c.SSH_MSG_CHANNEL_OPEN: ConnectionService._open,
    c.SSH_MSG_CHANNEL_OPEN_CONFIRMATION: ConnectionService._open_confirmation,
    c.SSH_MSG_CHANNEL_OPEN_FAILURE: ConnectionService._open_failure,
    c.SSH_MSG_CHANNEL_WINDOW_ADJUST: ConnectionService._window_adjust,
    c.SSH_MSG_CHANNEL_DATA: ConnectionService._data,
    c.SSH_MSG_CHANNEL_EXTENDED_DATA: ConnectionService._extended_data,
    c.SSH_MSG_CHANNEL_EOF: ConnectionService._eof,
    c.SSH_MSG_CHANNEL_CLOSE: ConnectionService._close,
    c.SSH_MSG_CHANNEL_REQUEST: ConnectionService._request,
    c.SSH_MSG_CHANNEL_SUCCESS: ConnectionService._reply_ignored,
    c.SSH_MSG_CHANNEL_FAILURE: ConnectionService._reply_ignored,
}
