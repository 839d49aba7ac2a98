"""A session held back by the shared budget is woken only when its waiting request fits.

Sans-IO, two sessions of one connection sharing one :class:`Budget`: an
upload whose store is slow (its WRITE jobs held, as a worker thread waiting on
S3 holds them) fills the budget, so its next WRITE waits; meanwhile another
session's many small requests come and go. Each small reply freed used to
wake the upload, which costed its WRITE again, found it still did not fit and
waited again (about 30 reactor passes per WRITE in an S3 put). Now the upload
sleeps through them, and wakes once, when room for its WRITE is freed; every
guarantee stays: the small session is never starved, and the WRITE starts.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paramiko

from spindlex_tw.core.wire import Reader, uint32, uint64
from spindlex_tw.fs.local import LocalFileSystem
from spindlex_tw.protocol.constants import SSH_FX_OK
from spindlex_tw.sftp import codes
from spindlex_tw.sftp.budget import Budget
from spindlex_tw.sftp.context import Limits
from spindlex_tw.sftp.effects import Blocking
from spindlex_tw.sftp.session import Job, SftpSession
from tests.sftp.sansio import AllowAll, packet, request, s
from tests.support import apps
from tests.support.harness import ServerProcess

WRITE = 64 * 1024
# Two WRITEs of WRITE bytes (each about 66 KiB with its reply's room) fit, a third does not.
LIMITS = Limits(max_outstanding_bytes=150_000)


class Side:
    """One session of the connection, its wake-ups counted, its jobs run or held."""

    def __init__(self, root: Path, budget: Budget, pending: list[Side]) -> None:
        self.wakes = 0
        self.pending = pending  # sessions woken, for the driver's next pass
        self.session = SftpSession(
            LocalFileSystem(str(root)), AllowAll(), LIMITS, "tester", budget=budget, wake=self._wake
        )
        self.held: list[Job] = []
        self.sent = b""
        self.next_id = 1

    def _wake(self) -> None:
        self.wakes += 1
        self.pending.append(self)

    def send(self, kind: int, *fields: bytes | str, hold: bool = False) -> None:
        rid, self.next_id = self.next_id, self.next_id + 1
        self.session.receive_data(request(kind, rid, *fields))
        self.drive(hold)

    def drive(self, hold: bool = False) -> None:
        """What the Twisted driver does in one pass: write replies, run or hand off jobs."""
        while True:
            self.sent += b"".join(self.session.data_to_send())
            jobs = self.session.take_jobs()
            if not jobs:
                if self.session.has_output:
                    continue
                return
            for job in jobs:
                if hold:
                    self.held.append(job)
                else:
                    self.run(job)

    def replies(self) -> list[tuple[int, Reader]]:
        """Every reply sent so far: its type, and a reader after its request id."""
        out, reader = [], Reader(self.sent)
        while reader.remaining():
            body = reader.string()
            out.append((body[0], Reader(body, 5)))
        return out

    def handle(self) -> bytes:
        kind, body = self.replies()[-1]
        assert kind == codes.SSH_FXP_HANDLE
        return body.string()

    def run(self, job: Job) -> None:
        effect = job.effect
        if isinstance(effect, Blocking):
            self.session.complete(job, effect.function())
        else:
            self.session.complete(job, effect.function(*effect.args))


def _wake_pending(pending: list[Side]) -> None:
    """The reactor's later passes over the sessions woken (``callLater(0, _flush)``).

    A few rounds at most: a session that wakes itself on every pass would
    otherwise keep this going for ever; its wake count tells.
    """
    for _ in range(5):
        woken, pending[:] = pending[:], []
        for side in woken:
            side.drive(hold=True)


def test_small_replies_freed_do_not_wake_a_session_whose_write_does_not_fit(
    tmp_path: Path,
) -> None:
    (tmp_path / "small").write_bytes(b"x" * 100)
    budget = Budget.for_limits(LIMITS)
    pending: list[Side] = []
    upload = Side(tmp_path, budget, pending)
    other = Side(tmp_path, budget, pending)
    for side in (upload, other):
        side.session.receive_data(packet(codes.SSH_FXP_INIT, uint32(3)))
        side.drive()

    upload.send(
        codes.SSH_FXP_OPEN,
        "big",
        uint32(codes.SSH_FXF_WRITE | codes.SSH_FXF_CREAT),
        uint32(0),
    )
    handle = upload.handle()
    for number in range(3):
        data = s(b"w" * WRITE)
        upload.send(codes.SSH_FXP_WRITE, s(handle), uint64(number * WRITE), data, hold=True)
    assert len(upload.held) == 2  # the store is slow: two WRITEs in flight
    assert upload.session.outstanding == 2 and not upload.session.wants_input  # the third waits

    # Another session of the connection: a hundred requests, each answered
    # (a session with nothing in flight always starts one), each reply freed.
    answered = 0
    for _ in range(100):
        other.send(codes.SSH_FXP_STAT, "small")
        _wake_pending(pending)
        answered += 1
    assert answered == 100 and other.session.outstanding == 0
    assert upload.wakes == 0  # none of that freed room for the WRITE
    assert upload.session.outstanding == 2

    # The other session holds a READ of 100 KiB: the budget is past its limit.
    other.send(codes.SSH_FXP_OPEN, "small", uint32(codes.SSH_FXF_READ), uint32(0))
    read_handle = other.handle()
    other.send(codes.SSH_FXP_READ, s(read_handle), uint64(0), uint32(100 * 1024), hold=True)
    assert budget.spent
    # One of the upload's WRITEs is stored and its reply taken: the room it
    # frees is not enough while the READ holds the rest, and the upload,
    # which freed it, looked by itself: nobody woke it.
    upload.run(upload.held.pop(0))
    upload.drive(hold=True)
    assert upload.wakes == 0 and upload.session.outstanding == 1
    # The READ's reply is taken: room for the WRITE, so the upload is woken,
    # once, and starts it.
    other.run(other.held.pop())
    other.drive()
    assert upload.wakes == 1
    _wake_pending(pending)
    assert upload.session.outstanding == 2
    while upload.held:
        upload.run(upload.held.pop(0))
        upload.drive(hold=True)
    statuses = [body.uint32() for kind, body in upload.replies() if kind == codes.SSH_FXP_STATUS]
    assert statuses == [SSH_FX_OK] * 3  # every WRITE answered
    assert upload.wakes == 1
    assert (tmp_path / "big").stat().st_size == 3 * WRITE


def test_the_budget_wakes_a_waiter_when_its_cost_fits_and_never_the_freer() -> None:
    budget = Budget(max_bytes=100, max_requests=10)
    woken: list[str] = []
    budget.spend(100, 2)
    budget.wait("big", lambda: woken.append("big"), 60)
    budget.wait("small", lambda: woken.append("small"), 10)
    for _ in range(5):
        budget.free(5)  # 25 freed in small steps
    assert woken == ["small"]
    budget.free(35, 1, freer="big")  # room for "big" now, but it freed it: it looks itself
    assert woken == ["small"]
    budget.spend(0, 1)
    budget.free(0, 1)  # anyone else's freeing wakes it
    assert woken == ["small", "big"]


class SmallBudgetServer(apps.TestServer):
    """SFTP with file calls in worker threads and a 1 MiB in-flight budget per connection."""

    def check_channel_subsystem_request(self, channel: Any, name: str) -> bool:
        if name != "sftp":
            return False
        from spindlex_tw.server.sftp_server import SFTPServer

        class Served(SFTPServer):
            disk_io = "threads"
            max_outstanding_bytes = 1024 * 1024

        Served(channel, os.environ["SPINDLEX_TEST_SFTP_ROOT"])
        return True


def test_sessions_of_one_connection_sharing_a_small_budget_all_finish_with_paramiko(
    start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    """Three SFTP channels of one Paramiko connection put and get 3 MiB each at
    once: pipelined WRITEs and prefetched READs spend the shared 1 MiB budget,
    so the sessions hold each other back and are woken by each other's replies."""
    root = tmp_path / "root"
    root.mkdir()
    server = start_server(
        app="tests.sftp.test_budget_wakeups:SmallBudgetServer",
        env={"SPINDLEX_TEST_SFTP_ROOT": str(root)},
    )
    contents = [os.urandom(3 * 1024 * 1024) for _ in range(3)]
    for number, content in enumerate(contents):
        (tmp_path / f"local{number}").write_bytes(content)
    transport = paramiko.Transport(("127.0.0.1", server.port))
    failures: list[BaseException] = []

    def transfer(client: paramiko.SFTPClient, number: int) -> None:
        try:
            client.put(str(tmp_path / f"local{number}"), f"up{number}")
            client.get(f"up{number}", str(tmp_path / f"back{number}"))
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)

    try:
        transport.connect(username="alice", password="secret")
        clients = [paramiko.SFTPClient.from_transport(transport) for _ in contents]
        threads = [
            threading.Thread(target=transfer, args=(client, number))
            for number, client in enumerate(clients)
            if client is not None
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not any(thread.is_alive() for thread in threads)
    finally:
        transport.close()
    assert failures == [] and len(threads) == 3
    for number, content in enumerate(contents):
        assert (root / f"up{number}").read_bytes() == content
        assert (tmp_path / f"back{number}").read_bytes() == content
