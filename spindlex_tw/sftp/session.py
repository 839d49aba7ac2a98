"""One SFTP v3 session, sans-IO: bytes in, reply bytes and jobs out.

The driver (``spindlex_tw.tx.sftp`` in production, a plain loop in tests)
feeds the client's bytes to :meth:`SftpSession.receive_data`, writes whatever
:meth:`data_to_send` returns, carries out each :class:`Job` from
:meth:`take_jobs` (a blocking call for a worker thread, or a user hook for the
event loop) and hands the outcome back with :meth:`complete` or :meth:`fail`.

Every request runs as its own coroutine, so requests are served concurrently
and reply as they finish, in any order. Requests stop being read from the
input while too many, or too many bytes, are outstanding, or while the
client is not taking replies; :attr:`wants_input` tells the driver when to
pause and resume its transport. A request's bytes count the room its reply
may take (see :mod:`spindlex_tw.sftp.budget`), and a request that does not
fit what is left of the budget waits, unread, until replies free it. The
budget may be shared by every session of one connection; a session with
nothing in flight (no request under way, no reply waiting to be taken)
always starts its next request, whatever the others hold. Calls on the
files that cannot wait run as the request is read, inside
:meth:`receive_data` (see ``Context.io``); only the others become jobs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from spindlex_tw.core.errors import DecodeError
from spindlex_tw.core.wire import Reader
from spindlex_tw.fs.interface import FileSystem
from spindlex_tw.protocol.constants import (
    SSH_FX_BAD_MESSAGE,
    SSH_FX_FAILURE,
    SSH_FX_OP_UNSUPPORTED,
)
from spindlex_tw.sftp import audit, extensions, file_ops, path_ops, replies
from spindlex_tw.sftp.budget import Budget, request_cost
from spindlex_tw.sftp.codes import (
    SSH_FXP_CLOSE,
    SSH_FXP_EXTENDED,
    SSH_FXP_FSETSTAT,
    SSH_FXP_FSTAT,
    SSH_FXP_INIT,
    SSH_FXP_READ,
    SSH_FXP_READDIR,
    SSH_FXP_WRITE,
)
from spindlex_tw.sftp.context import (
    THREADS,
    AccessPolicy,
    Context,
    Handler,
    Limits,
    SessionClosed,
)
from spindlex_tw.sftp.effects import Blocking, CallHook, Effect, Wait
from spindlex_tw.sftp.framing import FramingError, PacketBuffer
from spindlex_tw.sftp.handles import FileHandle
from spindlex_tw.sftp.replies import Reply
from spindlex_tw.sftp.status import SFTPError, message_for_errno, status_for_errno

HANDLERS: dict[int, Handler] = {
    **file_ops.HANDLERS,
    **path_ops.HANDLERS,
    SSH_FXP_EXTENDED: extensions.extended,
}


#: Bytes of replies :meth:`SftpSession.data_to_send` hands out at once (one reply
#: at least): a transport that fills up pauses the session before it takes
#: more, so a client that reads nothing has at most this beyond its channel's
#: high-water mark, and the replies it left are held, counted in the budget.
OUTPUT_BATCH = 256 * 1024


def _ignore(message: str, error: BaseException) -> None:
    """The default error reporter, for sessions nobody watches (tests)."""


class _Task:
    """One request in progress."""

    __slots__ = ("coro", "cost", "done", "lane", "pending", "reply", "request_id", "room")

    def __init__(
        self, coro: Coroutine[Any, Any, Reply | None], request_id: int, cost: int, room: int
    ) -> None:
        self.coro = coro
        self.request_id = request_id
        self.cost = cost  # budget bytes held until the reply is handed out
        self.room = room  # the most the reply may take: a larger one is refused
        self.lane: bytes | None = None  # the handle whose replies must keep request order
        self.done = False
        self.reply: Reply | None = None
        self.pending: audit.Pending | None = None  # what the audit trail will record of it


# Requests whose first field is a handle. OpenSSH's clients take their replies
# to come back in order per handle: scp truncates an upload, and reget/reput
# give up, at the first reordered acknowledgement. So the work on one handle
# still runs concurrently, but its replies are released in request order.
_HANDLE_REQUESTS = frozenset(
    {
        SSH_FXP_CLOSE,
        SSH_FXP_READ,
        SSH_FXP_WRITE,
        SSH_FXP_FSTAT,
        SSH_FXP_FSETSTAT,
        SSH_FXP_READDIR,
    }
)


class Job:
    """Work for the driver: ``effect`` is a :class:`Blocking` or a :class:`CallHook`."""

    __slots__ = ("_task", "effect")

    def __init__(self, effect: Blocking[Any] | CallHook, task: _Task) -> None:
        self.effect = effect
        self._task = task


class SftpSession:
    """The server side of one SFTP session over ``fs``, consulting ``policy``."""

    def __init__(
        self,
        fs: FileSystem,
        policy: AccessPolicy,
        limits: Limits | None = None,
        username: str | None = None,
        report: Callable[[str, BaseException], None] = _ignore,
        record: audit.Record | None = None,
        budget: Budget | None = None,
        wake: Callable[[], None] = lambda: None,
        file_calls: str = THREADS,
    ) -> None:
        """``record``, if given, is handed each finished :class:`~.audit.Operation`.

        ``budget`` is shared with the connection's other sessions (by default
        the session has its own, of ``limits``); ``wake`` is called when they
        free room this session waits for: the driver then calls :meth:`take_jobs`
        (later, not from within ``wake``) and looks at :attr:`wants_input`.
        ``file_calls`` says where calls on ``fs`` run (``Context.io``): the driver
        runs in worker threads only what comes to it as a ``Blocking`` job.
        """
        self.limits = limits or Limits()
        self._budget = budget or Budget.for_limits(self.limits)
        self._wake = wake
        self._record = record
        self._ctx = Context(fs, policy, self.limits, username, report)
        self._ctx.file_calls = file_calls
        self._report = report
        self._buffer = PacketBuffer(self.limits.max_packet_length)
        self._waiting: memoryview | bytes | None = None  # taken, but too costly to start yet
        self._waiting_cost = (0, 0)  # its request_cost, reckoned once however long it waits
        self._held_back = False  # waiting on the budget for others to free room
        self._out: deque[tuple[Reply, int]] = deque()  # replies and their budget cost
        self._jobs: list[Job] = []
        self._ready: deque[tuple[_Task, object, BaseException | None]] = deque()
        self._lanes: dict[bytes, deque[_Task]] = {}
        self._tasks = 0
        self._unsent = 0  # budget held by replies in _out, freed as the driver takes them
        self._initialized = False
        self._output_blocked = False
        self._input_ended = False
        self._running = False
        self.closed = False
        self.finished = False
        self.protocol_error: FramingError | None = None

    # --- the driver's interface ----------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if self.closed or self.protocol_error is not None:
            return
        self._buffer.feed(data)
        self._pump()

    def data_to_send(self) -> list[bytes | bytearray]:
        """Replies for the client, :data:`OUTPUT_BATCH` bytes of them at most, none
        while the client is not taking them (:meth:`set_output_blocked`).

        Until taken they count against the budget; once taken they are the
        transport's, which pauses this session when it holds too much. The
        budget they free is spent by :meth:`take_jobs`, after the driver has
        written them: a transport that is full has paused the session by then.
        """
        out: list[bytes | bytearray] = []
        size = freed = 0
        while self._out and not self._output_blocked and size < OUTPUT_BATCH:
            reply, cost = self._out.popleft()
            out += reply
            size += sum(map(len, reply))
            freed += cost
        if freed:
            self._unsent -= freed
            self._budget.free(freed, 0, self)
        return out

    @property
    def has_output(self) -> bool:
        """Replies are waiting and the client takes them: call :meth:`data_to_send`."""
        return bool(self._out) and not self._output_blocked

    def take_jobs(self) -> list[Job]:
        self._pump()  # start the requests the replies taken since may have made room for
        jobs, self._jobs = self._jobs, []
        return jobs

    def complete(self, job: Job, value: object) -> None:
        self._ready.append((job._task, value, None))
        self._pump()

    def fail(self, job: Job, error: BaseException) -> None:
        self._ready.append((job._task, None, error))
        self._pump()

    def set_output_blocked(self, blocked: bool) -> None:
        """The client is not taking replies (or is again): stop (resume) reading requests."""
        self._output_blocked = blocked
        self._pump()

    @property
    def wants_input(self) -> bool:
        return (
            not self.closed
            and self.protocol_error is None
            and not self._saturated()
            and self._waiting is None
            and len(self._buffer) < self.limits.max_packet_length
        )

    def end_of_input(self) -> None:
        """The client sent EOF: answer what came before it, then :attr:`drained` is true."""
        self._input_ended = True
        self._pump()

    @property
    def drained(self) -> bool:
        """EOF came, every request before it has been answered, and the driver has the replies."""
        return (
            self._input_ended
            and not self._tasks
            and not self._out
            and self._waiting is None
            and not self._buffer.has_packet()
        )

    @property
    def outstanding(self) -> int:
        """Requests started and not yet answered."""
        return self._tasks

    @property
    def idle(self) -> bool:
        """No request in progress and nothing open: ending the session now cuts nothing."""
        return self._tasks == 0 and len(self._ctx.handles) == 0

    def connection_lost(self) -> None:
        """The client is gone: drop pending output and close every handle."""
        if self.closed:
            return
        self.closed = True
        self._ctx.closed = True
        self._out.clear()
        unsent, self._unsent = self._unsent, 0
        self._budget.free(unsent)
        self._buffer = PacketBuffer(self.limits.max_packet_length)
        self._waiting = None
        for handle in self._ctx.handles.pop_all():
            if self._record is not None and isinstance(handle, FileHandle):
                self._record(audit.closed(handle, "connection_lost"))
            self._start(self._ctx.release(handle, complete=False), request_id=0, cost=0, room=0)
        self._pump()

    # --- running requests ----------------------------------------------------------------

    def _saturated(self) -> bool:
        # The only request of its session always starts: no session starves.
        return self._output_blocked or bool(self._holding and self._budget.spent)

    @property
    def _holding(self) -> bool:
        """This session holds budget: requests under way, or replies not yet taken.

        Replies count too: a request answered on the spot (Context.io inline)
        is no longer under way, but its reply holds memory until the driver
        takes it, and a burst of requests must not pile replies up past the budget.
        """
        return bool(self._tasks or self._unsent)

    def _hold_back(self, cost: int) -> None:
        """Wait for the others to free ``cost``; what this session frees, it retries itself."""
        self._held_back = True
        self._budget.wait(self, self._wake, cost)

    def _pump(self) -> None:
        if self._running:
            return  # re-entered from a step; the outer loop carries on
        self._running = True
        try:
            while True:
                while self._ready:
                    self._step(*self._ready.popleft())
                if not self._take_packet():
                    break
        finally:
            self._running = False
        if self.closed and not self._tasks and not self.finished:
            self.finished = True
            self._budget.forget(self)
            self._ctx.fs.close()

    def _take_packet(self) -> bool:
        if self.closed or self.protocol_error is not None or self._output_blocked:
            return False
        packet = self._waiting
        if packet is None:
            if self._holding and self._budget.spent:
                self._hold_back(1)  # the next request's cost is not known: any room may do
                return False
            try:
                packet = self._buffer.next_packet()
            except FramingError as exc:
                self.protocol_error = exc
                return False
            if packet is None:
                return False
            self._waiting_cost = request_cost(packet, self.limits)
        cost, room = self._waiting_cost
        if self._holding and not self._budget.fits(cost):
            # Started now, it would overspend: it waits for replies to free the budget
            # (a request alone in flight always starts, however costly).
            self._waiting = packet
            self._hold_back(cost)
            return False
        self._waiting = None
        if self._held_back:
            self._held_back = False
            self._budget.forget(self)
        self._dispatch(packet, cost, room)
        return True

    def _dispatch(self, packet: memoryview | bytes, cost: int, room: int) -> None:
        kind = packet[0]
        number = int.from_bytes(packet[1:5], "big")
        if not self._initialized:
            if kind != SSH_FXP_INIT:
                self.protocol_error = FramingError("SFTP request before INIT")
                return
            self._initialized = True
            self._out.append((replies.version(extensions.advertised()), 0))
            return
        if kind == SSH_FXP_INIT:
            # INIT carries a version where requests carry an id; answer it there.
            self._out.append((replies.status(number, SSH_FX_FAILURE), 0))
            return
        handler = HANDLERS.get(kind)
        if handler is None:
            self._out.append((replies.status(number, SSH_FX_OP_UNSUPPORTED), 0))
            return
        task = self._start(handler(self._ctx, number, Reader(packet, 5)), number, cost, room)
        if self._record is not None and kind in audit.AUDITED:
            task.pending = audit.describe(
                kind, packet, self._ctx.handles, self.limits.symlink_target_first
            )
        if kind in _HANDLE_REQUESTS and len(packet) >= 9:
            lane = bytes(packet[9 : 9 + int.from_bytes(packet[5:9], "big")])
            task.lane = lane
            self._lanes.setdefault(lane, deque()).append(task)

    def _start(
        self, coro: Coroutine[Any, Any, Reply | None], request_id: int, cost: int, room: int
    ) -> _Task:
        self._tasks += 1
        self._budget.spend(cost, 1)
        task = _Task(coro, request_id, cost, room)
        self._ready.append((task, None, None))
        return task

    def _step(self, task: _Task, value: object, error: BaseException | None) -> None:
        try:
            if error is not None:
                effect: Effect[Any] = task.coro.throw(error)
            else:
                effect = task.coro.send(value)
        except StopIteration as stop:
            if task.pending is not None:
                self._audit(task.pending, stop.value, None)
            self._finish(task, stop.value)
        except BaseException as exc:
            if task.pending is not None:
                self._audit(task.pending, None, exc)
            self._finish(task, self._failure_reply(task.request_id, exc))
            if not isinstance(exc, Exception):
                raise
        else:
            self._suspend(task, effect)

    def _audit(
        self, pending: audit.Pending, reply: Reply | None, error: BaseException | None
    ) -> None:
        # Recorded as the request finishes, before its reply waits for others on its handle.
        assert self._record is not None
        self._record(pending.finish(reply, error))

    def _suspend(self, task: _Task, effect: Effect[Any]) -> None:
        if isinstance(effect, Wait):
            effect.signal.subscribe(lambda: self._ready.append((task, None, None)))
        elif self.closed and isinstance(effect, CallHook):
            # Nobody is left to answer: unwind instead of asking the user's code.
            self._ready.append((task, None, SessionClosed()))
        elif isinstance(effect, Blocking | CallHook):
            self._jobs.append(Job(effect, task))
        else:
            self._ready.append((task, None, TypeError(f"unknown effect {effect!r}")))

    def _failure_reply(self, request_id: int, exc: BaseException) -> Reply | None:
        if isinstance(exc, SessionClosed):
            return None
        if isinstance(exc, SFTPError):
            return replies.status(request_id, exc.status_code, exc.message)
        if isinstance(exc, DecodeError):
            return replies.status(request_id, SSH_FX_BAD_MESSAGE)
        if isinstance(exc, OSError):
            code = status_for_errno(exc.errno)
            return replies.status(request_id, code, message_for_errno(exc.errno))
        self._report("SFTP request failed unexpectedly", exc)
        return replies.status(request_id, SSH_FX_FAILURE)

    def _finish(self, task: _Task, reply: Reply | None) -> None:
        if task.lane is None:
            self._emit(task, reply)
            return
        task.reply, task.done = reply, True
        lane = self._lanes[task.lane]
        while lane and lane[0].done:
            done = lane.popleft()
            self._emit(done, done.reply)
        if not lane:
            del self._lanes[task.lane]

    def _emit(self, task: _Task, reply: Reply | None) -> None:
        self._tasks -= 1
        # This session's own pump takes its next request after this: it is not woken.
        if reply is None or self.closed:
            self._budget.free(task.cost, 1, self)
            return
        self._budget.free(0, 1, self)
        self._unsent += task.cost  # freed when the driver takes the reply
        if sum(map(len, reply)) > task.room:
            # The budget counted only the room: a larger reply is a bug, not sent.
            self._report(
                "SFTP reply larger than the room reserved for it",
                ValueError(f"{sum(map(len, reply))} > {task.room} bytes"),
            )
            reply = replies.status(task.request_id, SSH_FX_FAILURE)
        self._out.append((reply, task.cost))
