"""One SSH channel: the public :class:`Channel` and the pieces it is made of.

- ``channel``: ``Channel``, the API (and the connection's handle);
- ``driver``: all output, in order, on the reactor thread;
- ``blocking``: the thread-safe blocking calls of worker threads;
- ``attach``: a Twisted protocol attached to the channel;
- ``facts``: what the session requests granted (pty, env, command...);
- ``link``: what a channel needs of its connection.
"""

from __future__ import annotations

from spindlex_tw.tx.channel.blocking import ChannelClosedError
from spindlex_tw.tx.channel.channel import Channel
from spindlex_tw.tx.channel.driver import HIGH_WATER, LOW_WATER

__all__ = ["HIGH_WATER", "LOW_WATER", "Channel", "ChannelClosedError"]
