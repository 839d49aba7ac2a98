"""What SFTP requests may hold in memory until answered, known before they run.

The sessions of one connection share one :class:`Budget` of
``Limits.max_outstanding_bytes`` and ``max_outstanding_requests``, so what a
connection's SFTP sessions hold does not grow with its channel count; a
session with nothing in flight may always start one request, so no session
waits forever on the others. Each request is counted at this cost: the
bytes of the request itself plus the room its reply (or, for a server-side
copy, its buffer) may take. The room is an upper bound taken
from the request and the limits, so the budget is spent before the reply is
built, never discovered afterwards; the session refuses any reply that would
not fit the room it reserved.
"""

from __future__ import annotations

from collections.abc import Callable

from spindlex_tw.core.errors import DecodeError
from spindlex_tw.core.wire import Reader
from spindlex_tw.sftp.codes import (
    SSH_FXP_EXTENDED,
    SSH_FXP_READ,
    SSH_FXP_READDIR,
    SSH_FXP_READLINK,
    SSH_FXP_REALPATH,
)
from spindlex_tw.sftp.context import Limits

#: STATUS, HANDLE, ATTRS and the fixed-layout extended replies all fit in this.
SMALL_REPLY = 1024
#: The longest path the kernel resolves or a symbolic link holds.
PATH_MAX = 4096
#: The longest user or group name the server sends; a longer one is sent as
#: unknown (OpenSSH's clients then show the number), so a reply's size stays bounded.
MAX_ACCOUNT_NAME = 64
#: One READDIR entry at most: a 255-byte name, its ``ls -l`` line (two account
#: names of MAX_ACCOUNT_NAME, numbers, a date and the name again) and its attributes.
DIRENTRY_ROOM = 1024

_DATA_HEADER = 13  # length, type, request id, data length
_PATH_REPLIES = frozenset({SSH_FXP_REALPATH, SSH_FXP_READLINK})
_PATH_EXTENSIONS = frozenset({b"expand-path@openssh.com", b"home-directory"})


def account_name(name: str | None) -> str | None:
    """``name``, or None (unknown) when it is longer than a reply makes room for."""
    if name is None or len(name.encode("utf-8", "surrogateescape")) > MAX_ACCOUNT_NAME:
        return None
    return name


def id_count(blob_length: int) -> int:
    """How many uint32 ids a users-groups-by-id list of ``blob_length`` bytes holds."""
    return blob_length // 4


def users_groups_room(ids: int) -> int:
    """The largest reply to a users-groups-by-id request for ``ids`` ids in all."""
    return SMALL_REPLY + ids * (4 + MAX_ACCOUNT_NAME)


def _path_room(request_length: int, limits: Limits) -> int:
    # One path, twice (name and long name): the request's path made absolute
    # under the home directory, or a link's target, which the kernel bounds.
    return SMALL_REPLY + 2 * (request_length + len(limits.home) + PATH_MAX)


def _extension_room(packet: memoryview | bytes, limits: Limits) -> int:
    reader = Reader(packet, 5)
    name = reader.string()
    if name in _PATH_EXTENSIONS:
        return _path_room(len(packet), limits)
    if name == b"copy-data":
        return limits.max_write_length  # the buffer each step of the copy reads into
    if name == b"users-groups-by-id@openssh.com":
        ids = id_count(len(reader.string_view())) + id_count(len(reader.string_view()))
        return users_groups_room(ids) if ids <= limits.max_ids_per_request else SMALL_REPLY
    return SMALL_REPLY


def reply_room(packet: memoryview | bytes, limits: Limits) -> int:
    """The most the answer to ``packet`` (type byte onwards) may take in memory."""
    kind = packet[0]
    try:
        if kind == SSH_FXP_READ:
            # The length field ends the packet; READs longer than the limit are served short.
            requested = int.from_bytes(packet[-4:], "big")
            return _DATA_HEADER + min(requested, limits.max_read_length)
        if kind == SSH_FXP_READDIR:
            return SMALL_REPLY + limits.readdir_batch * DIRENTRY_ROOM
        if kind in _PATH_REPLIES:
            return _path_room(len(packet), limits)
        if kind == SSH_FXP_EXTENDED:
            return _extension_room(packet, limits)
    except DecodeError:
        pass  # the handler answers a malformed request with a short STATUS
    return SMALL_REPLY


def request_cost(packet: memoryview | bytes, limits: Limits) -> tuple[int, int]:
    """``(cost, room)``: what ``packet`` holds in flight, and the part its reply may use.

    A packet handed out as a view keeps the whole chunk it lies in alive, so
    the chunk is what it costs.
    """
    held = len(packet.obj) if isinstance(packet, memoryview) else len(packet)  # type: ignore[arg-type]
    room = max(reply_room(packet, limits), SMALL_REPLY)  # any request may be answered by a STATUS
    return held + room, room


class Budget:
    """Bytes and requests in flight for every SFTP session of one connection.

    A session spends a request's cost when it starts and frees it once the
    reply is handed to the driver. A session held back by the others' spending
    calls :meth:`wait` with the cost it waits to spend; once enough is freed
    for that cost, its ``wake`` is called (and forgotten): the driver must not
    re-enter the session from it, but schedule a pass over it. Freeing less
    wakes nobody: while a slow store holds a connection's budget, each small
    reply would otherwise cost a pass over a session that still cannot start.
    """

    def __init__(self, max_bytes: int, max_requests: int) -> None:
        self.max_bytes = max_bytes
        self.max_requests = max_requests
        self.bytes = 0
        self.requests = 0
        self._waiting: dict[object, tuple[int, Callable[[], None]]] = {}

    @classmethod
    def for_limits(cls, limits: Limits) -> Budget:
        return cls(limits.max_outstanding_bytes, limits.max_outstanding_requests)

    @property
    def spent(self) -> bool:
        """No new request may start, except as its session's only one."""
        return self.bytes >= self.max_bytes or self.requests >= self.max_requests

    def fits(self, cost: int) -> bool:
        return self.bytes + cost <= self.max_bytes and self.requests < self.max_requests

    def spend(self, cost: int, requests: int = 0) -> None:
        self.bytes += cost
        self.requests += requests

    def free(self, cost: int, requests: int = 0, freer: object = None) -> None:
        """Give back ``cost`` bytes and ``requests``; ``freer``, the session giving
        them, is not woken: it looks at its own waiting request after freeing."""
        self.bytes -= cost
        self.requests -= requests
        if not self._waiting or self.requests >= self.max_requests:
            return
        room = self.max_bytes - self.bytes
        fitting = [
            session
            for session, (needed, _) in self._waiting.items()
            if needed <= room and session is not freer
        ]
        for session in fitting:
            self._waiting.pop(session)[1]()

    def wait(self, session: object, wake: Callable[[], None], cost: int = 1) -> None:
        """Call ``wake`` once others free room for ``cost`` bytes (by default, any room).

        A session waits once, for the cost it gave last, however often it asks.
        """
        self._waiting[session] = (cost, wake)

    def forget(self, session: object) -> None:
        self._waiting.pop(session, None)
