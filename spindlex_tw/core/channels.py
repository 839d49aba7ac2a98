"""One channel's state (RFC 4254 section 5): ids, windows and its ordered output queue."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

# Output items: channel data (stream 0 or an extended type) or a ready-made
# message (requests, EOF) that must not overtake the data queued before it.
OutData = tuple[int, memoryview]
OutMessage = bytes


@dataclass
class ChannelState:
    local_id: int
    peer_id: int
    kind: str
    local_window: int
    local_max_packet: int
    remote_window: int = 0
    remote_max_packet: int = 0
    confirmed: bool = False
    eof_received: bool = False
    eof_sent: bool = False
    close_received: bool = False
    close_sent: bool = False
    close_requested: bool = False
    aborted: bool = False  # we dropped it for a flow-control violation
    consumed: int = 0  # received bytes handed on but not yet returned by WINDOW_ADJUST
    pending_replies: deque[bool | None] = field(default_factory=deque)
    output: deque[OutData | OutMessage] = field(default_factory=deque)
    buffered: int = 0  # data bytes waiting in ``output``

    @property
    def open(self) -> bool:
        return not (self.close_sent or self.close_received)
