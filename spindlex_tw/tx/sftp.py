"""The SFTP subsystem on Twisted: drives a sans-IO :class:`SftpSession` over a transport.

The transport is whatever carries the subsystem's bytes, an SSH channel in
production or standard I/O in tests. Blocking filesystem work goes to one
small process-wide thread pool, created on first use and stopped when the
reactor shuts down, or runs inline when the served files are held in memory
(see ``disk_io``); user hooks run on the reactor thread and may return
Deferreds or coroutines.

Back-pressure both ways: when the client stops taking replies (the channel
pauses this protocol as a producer), or too many requests are in flight, the
session stops taking requests and the transport is paused until it drains.
The SFTP sessions of one connection share one in-flight budget
(:class:`~spindlex_tw.sftp.budget.Budget`), so opening more channels does not
give a client more of the server's memory.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from twisted.internet import defer, interfaces
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from spindlex_tw.fs.interface import FileSystem
from spindlex_tw.fs.local import LocalFileSystem
from spindlex_tw.sftp.audit import Operation
from spindlex_tw.sftp.bandwidth import Bandwidth, TokenBucket
from spindlex_tw.sftp.budget import Budget
from spindlex_tw.sftp.context import INLINE, TRY_FIRST, AccessPolicy, Limits
from spindlex_tw.sftp.effects import Blocking
from spindlex_tw.sftp.session import Job, SftpSession
from spindlex_tw.tx import audit
from spindlex_tw.tx.blocking import BlockingPool
from spindlex_tw.tx.hooks import DEFAULT_HOOK_TIMEOUT, run_hook
from spindlex_tw.tx.trim import release_freed_memory

log = Logger(namespace="spindlex_tw.sftp")

# Enough that a slow read or a slow disk does not hold up listings, few enough
# that a burst of sessions cannot flood the machine with threads.
WORKER_THREADS = 8

# What a failed, raising or timed-out access hook answers: not True, so refused.
_DENIED = object()

#: Where file calls run: "threads" (worker threads), "inline" (on the reactor
#: thread), or "auto" (inline when the root is on a filesystem held in memory).
DISK_IO_MODES = ("auto", "threads", "inline")


class _WorkerPool:
    """The threads of every SFTP session in this process."""

    def __init__(self) -> None:
        self._pool: BlockingPool | None = None

    def get(self, reactor: Any) -> BlockingPool:
        if self._pool is None:
            # Not Twisted's ThreadPool: its per-call hand-off costs ten times as much
            # CPU (see spindlex_tw.tx.blocking), and every READ and WRITE is one call.
            pool = BlockingPool(reactor, WORKER_THREADS, "spindlex-sftp")
            reactor.addSystemEventTrigger("during", "shutdown", self._stop, pool)
            self._pool = pool
        return self._pool

    def _stop(self, pool: BlockingPool) -> None:
        if self._pool is pool:
            self._pool = None
        pool.stop()


workers = _WorkerPool()


class _ConnectionBudgets:
    """The in-flight budget of each connection, shared by its SFTP sessions.

    Keyed by the connection's id (the transport's ``session_id``); the first
    session's limits size it, and it is dropped when its last session ends.
    A transport with no connection (standard I/O in tests) gets its own.
    """

    def __init__(self) -> None:
        self._shared: dict[str, tuple[Budget, int]] = {}

    def join(self, connection_id: str | None, limits: Limits) -> Budget:
        if connection_id is None:
            return Budget.for_limits(limits)
        budget, sessions = self._shared.get(connection_id, (None, 0))
        if budget is None:
            budget = Budget.for_limits(limits)
        self._shared[connection_id] = (budget, sessions + 1)
        return budget

    def leave(self, connection_id: str | None) -> None:
        if connection_id is None:
            return
        budget, sessions = self._shared[connection_id]
        if sessions == 1:
            del self._shared[connection_id]
        else:
            self._shared[connection_id] = (budget, sessions - 1)


budgets = _ConnectionBudgets()


@implementer(interfaces.IPushProducer, interfaces.IHalfCloseableProtocol)
class SFTPProtocol(Protocol):
    """One SFTP session over ``self.transport``, serving ``root`` under ``policy``'s hooks.

    ``storage``, if given, makes the file system served instead of the directory ``root``.
    ``bandwidth`` limits the bytes taken in and sent out, on the reactor's
    clock. Over the upload limit, input is paused for as long as the bucket
    says (no request is read, so no WRITE lands). Replies leave once the
    download limit has paid for them; until then no request is started.
    """

    def __init__(
        self,
        policy: AccessPolicy,
        root: str,
        limits: Limits | None = None,
        hook_timeout: float = DEFAULT_HOOK_TIMEOUT,
        reactor: Any = None,
        disk_io: str = "auto",
        storage: Callable[[], FileSystem] | None = None,
        bandwidth: Bandwidth | None = None,
    ) -> None:
        if disk_io not in DISK_IO_MODES:
            raise ValueError(f"disk_io must be one of {', '.join(DISK_IO_MODES)}, not {disk_io!r}")
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self._reactor = reactor
        self._policy = policy
        self._root = root
        self._limits = limits or Limits()
        self._hook_timeout = hook_timeout
        self._disk_io = disk_io
        self._storage = storage or partial(LocalFileSystem, root)
        self._session: SftpSession | None = None
        self._budget: Budget | None = None
        self._input_paused = False
        # None when unlimited: then the hot paths pay one attribute test, nothing more.
        self._upload: TokenBucket | None = bandwidth.upload if bandwidth else None
        self._download: TokenBucket | None = bandwidth.download if bandwidth else None
        # While set, a bandwidth limit's debt holds input (uploads) or replies
        # (downloads) until it fires. Holding input alone cannot limit downloads:
        # requests a client packs into one channel message arrive at once.
        self._input_held: Any = None
        self._output_held: Any = None
        # Replies charged to the download limit, sent once it has paid for them.
        self._unpaid: list[bytes | bytearray] = []
        self._consumer_paused = False  # the transport asked us to hold replies
        self._ending = False
        self._lost = False
        self._finished: list[defer.Deferred[None]] = []
        # The transport, untyped: a channel or any ITransport with the producer methods.
        self._transport: Any = None
        # A file's data may be in the bytearray it was read into (LocalFileSystem.read_cached):
        # an SSH channel sends it as it is, Twisted's own transports (stdio) take only bytes.
        self._bytes_only = True
        # For audit events: whose session, and when each open handle was opened.
        self._session_id: str | None = None
        self._username: str | None = None
        self._opened: dict[str, float] = {}

    # --- IProtocol ---------------------------------------------------------------------------

    def connectionMade(self) -> None:
        self._transport = self.transport
        self._bytes_only = not getattr(self.transport, "takes_buffers", False)
        get_username = getattr(self.transport, "get_username", None)
        username = get_username() if callable(get_username) else None
        self._session_id = getattr(self.transport, "session_id", None)
        self._username = username or None
        try:
            fs = self._storage()
        except OSError as exc:
            log.error("SFTP root {root!r} cannot be opened: {error}", root=self._root, error=exc)
            self._ending = True
            self._transport.loseConnection()
            return
        # A call on memory never waits, and two thread wake-ups per call cost more
        # than the call: small files upload at half the CPU inline. On a disk, a
        # call that can promise not to wait (a cached read) is tried inline first.
        inline = self._disk_io == "inline" or (
            self._disk_io == "auto" and fs.capabilities.never_waits
        )
        self._budget = budgets.join(self._session_id, self._limits)
        self._session = SftpSession(
            fs,
            self._policy,
            self._limits,
            username or None,
            self._report,
            self._audit,
            self._budget,
            self._wake,
            INLINE if inline else TRY_FIRST,
        )
        self._transport.registerProducer(self, True)

    @property
    def busy(self) -> bool:
        """Work in progress (a file open, a request running); see ``Channel.busy``."""
        return self._session is not None and not self._session.idle

    def dataReceived(self, data: bytes) -> None:
        if self._session is not None:
            self._session.receive_data(data)
            if self._upload is not None:
                self._hold_input(self._upload.take(len(data), self._reactor.seconds()))
            self._flush()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._lost = True
        if self._budget is not None:
            budgets.leave(self._session_id)
        for held in (self._input_held, self._output_held):
            if held is not None:
                held.cancel()
        self._input_held = self._output_held = None
        self._unpaid = []
        release_freed_memory(self._reactor)
        if self._session is None:
            self._fire_finished()
            return
        self._session.connection_lost()
        self._flush()

    # --- IHalfCloseableProtocol: EOF is not the end of the requests already sent --------------

    def readConnectionLost(self) -> None:
        """The client sent EOF: answer what it sent before, then close."""
        if self._session is not None:
            self._session.end_of_input()
            self._flush()

    def writeConnectionLost(self) -> None:
        """Nobody can read replies any more."""
        self.close()

    # --- IPushProducer: the transport's consumer side asks us to hold replies ------------------

    def pauseProducing(self) -> None:
        self._consumer_paused = True
        if self._session is not None:
            self._session.set_output_blocked(True)
            self._flush()

    def resumeProducing(self) -> None:
        self._consumer_paused = False
        if self._session is not None:
            self._session.set_output_blocked(self._output_held is not None)
            self._flush()

    def stopProducing(self) -> None:
        """The transport is going away; connectionLost follows and releases everything."""

    # --- for SFTPServer and tests ---------------------------------------------------------------

    def close(self) -> None:
        """End the session from the server side; handles are released when it is gone."""
        if not self._lost and not self._ending and self._transport is not None:
            self._ending = True
            self._transport.loseConnection()

    def when_finished(self) -> defer.Deferred[None]:
        """Fires once the session has ended and every handle and descriptor is closed."""
        if self._lost and (self._session is None or self._session.finished):
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._finished.append(d)
        return d

    # --- driving the session ---------------------------------------------------------------------

    def _wake(self) -> None:
        """Another session of the connection freed budget this one waits for."""
        # Later, not now: the session freeing it is in the middle of its own pass.
        self._reactor.callLater(0, self._flush)

    def _flush(self) -> None:
        session = self._session
        assert session is not None
        while True:
            # Replies go out before the next jobs run: a channel that cannot take
            # more pauses this producer at once, and the session stops taking
            # requests, even while jobs run inline and finish on the spot.
            output = session.data_to_send()
            if output and not self._lost:
                if self._bytes_only:
                    output = [bytes(part) for part in output]
                if self._download is None:
                    self._transport.writeSequence(output)
                else:
                    self._send_paid(output)
            jobs = session.take_jobs()
            if not jobs:
                if session.has_output:
                    continue  # replies taken freed budget; requests it started answered at once
                break
            for job in jobs:
                self._run(job)
        if session.protocol_error is not None and not self._ending and not self._lost:
            log.warn("SFTP session ended: {error}", error=session.protocol_error)
            self._ending = True
            self._transport.loseConnection()
        if session.drained and not self._unpaid and not self._ending and not self._lost:
            self._ending = True
            self._transport.loseConnection()
        if not self._lost:
            self._regulate_input(session.wants_input)
        if session.finished:
            self._fire_finished()

    def _hold_input(self, delay: float) -> None:
        """Hold input ``delay`` seconds from now (the bucket's debt covers all owed so far)."""
        if delay <= 0:
            return
        if self._input_held is not None:
            self._input_held.reset(delay)
        else:
            self._input_held = self._reactor.callLater(delay, self._release_input)

    def _send_paid(self, output: list[bytes | bytearray]) -> None:
        """Send replies once the download limit has paid for them.

        Charged now; while that puts the bucket in debt they wait, and the
        session (blocked meanwhile) neither makes more replies nor starts
        requests. Paying before sending keeps a transfer's last batch (up to
        OUTPUT_BATCH bytes) from leaving at line speed.
        """
        assert self._download is not None
        delay = self._download.take(sum(map(len, output)), self._reactor.seconds())
        if delay <= 0:
            self._transport.writeSequence(output)
            return
        self._unpaid = output
        self._output_held = self._reactor.callLater(delay, self._release_output)
        assert self._session is not None
        self._session.set_output_blocked(True)

    def _release_output(self) -> None:
        self._output_held = None
        unpaid, self._unpaid = self._unpaid, []
        if self._session is not None and not self._lost:
            self._transport.writeSequence(unpaid)
            self._session.set_output_blocked(self._consumer_paused)
            self._flush()

    def _release_input(self) -> None:
        self._input_held = None
        if self._session is not None and not self._lost:
            self._regulate_input(self._session.wants_input)

    def _regulate_input(self, wanted: bool) -> None:
        wanted = wanted and self._input_held is None
        if wanted and self._input_paused:
            self._input_paused = False
            self._transport.resumeProducing()
        elif not wanted and not self._input_paused:
            self._input_paused = True
            self._transport.pauseProducing()

    def _run(self, job: Job) -> None:
        """Start ``job``; one that can finish at once is handed back to the session now."""
        session = self._session
        assert session is not None
        effect = job.effect
        if isinstance(effect, Blocking):
            # What may run inline already has (Context.io): this one needs a thread.
            workers.get(self._reactor).submit(effect.function, partial(self._job_settled, job))
            return
        outcome = run_hook(
            self._reactor,
            effect.function,
            *effect.args,
            denied=_DENIED,
            timeout=self._hook_timeout,
        )
        if isinstance(outcome, defer.Deferred):
            outcome.addCallback(partial(self._job_settled, job, True))
        else:
            session.complete(job, outcome)

    def _job_settled(self, job: Job, ok: bool, value: Any) -> None:
        """A job that finished later (in a worker, or a hook's Deferred)."""
        assert self._session is not None
        if ok:
            self._session.complete(job, value)
        else:
            self._session.fail(job, value)
        self._flush()

    def _report(self, message: str, error: BaseException) -> None:
        log.failure(message, Failure(error, type(error), error.__traceback__))

    def _audit(self, operation: Operation) -> None:
        """Each finished operation the session reports, as an audit event (tx/audit.py)."""
        duration = None
        if operation.handle is not None:
            now = self._reactor.seconds()
            if operation.name == "open":
                self._opened[operation.handle] = now
            elif operation.name == "close" and operation.handle in self._opened:
                duration = now - self._opened.pop(operation.handle)
        audit.sftp_operation(self._session_id, self._username, operation, duration)

    def _fire_finished(self) -> None:
        waiting, self._finished = self._finished, []
        for d in waiting:
            d.callback(None)
