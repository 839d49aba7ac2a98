"""A synchronous driver for the sans-IO session and a tiny request/reply codec for tests.

The driver runs blocking jobs and hooks inline, in the order the session asks,
so every test is deterministic; tests that need concurrency hold jobs back.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spindlex_tw.core.wire import Reader, string, uint32, uint64
from spindlex_tw.fs.interface import FileSystem
from spindlex_tw.fs.local import LocalFileSystem
from spindlex_tw.protocol.constants import SSH_FX_EOF
from spindlex_tw.sftp import codes
from spindlex_tw.sftp.attrs import Attrs
from spindlex_tw.sftp.context import THREADS, Limits, fixed_answer
from spindlex_tw.sftp.effects import Blocking
from spindlex_tw.sftp.session import Job, SftpSession


class AllowAll:
    """The hooks of the public SFTPServer with their default answers."""

    def check_file_access(self, path: str, mode: str) -> object:
        return True

    def check_directory_access(self, path: str, mode: str) -> object:
        return True

    def get_file_permissions(self, path: str) -> object:
        return 0o644

    def get_directory_permissions(self, path: str) -> object:
        return 0o755


class Defaults(AllowAll):
    """SFTPServer's defaults, marked as such (``fixed_answer``): the session asks
    no hook, so an OPEN is one call on the files, as with the public class."""

    @fixed_answer(True)
    def check_file_access(self, path: str, mode: str) -> object:
        return True

    @fixed_answer(True)
    def check_directory_access(self, path: str, mode: str) -> object:
        return True

    @fixed_answer(0o644)
    def get_file_permissions(self, path: str) -> object:
        return 0o644

    @fixed_answer(0o755)
    def get_directory_permissions(self, path: str) -> object:
        return 0o755


@dataclass
class Reply:
    kind: int
    request_id: int
    body: Reader

    def status(self) -> tuple[int, str]:
        assert self.kind == codes.SSH_FXP_STATUS, self.kind
        return self.body.uint32(), self.body.text()


def packet(kind: int, *fields: bytes) -> bytes:
    payload = bytes((kind,)) + b"".join(fields)
    return uint32(len(payload)) + payload


def request(kind: int, rid: int, *fields: bytes | str) -> bytes:
    encoded = [string(f) if isinstance(f, str) else f for f in fields]
    return packet(kind, uint32(rid), *encoded)


def s(value: bytes | str) -> bytes:
    return string(value)


@dataclass
class Driver:
    """An SftpSession over ``root`` with inline jobs; replies parsed as they come."""

    root: Path
    policy: Any = field(default_factory=AllowAll)
    limits: Limits = field(default_factory=Limits)
    username: str | None = "tester"
    hold: bool = False  # keep jobs for the test to run in its own order
    errors: list[tuple[str, BaseException]] = field(default_factory=list)
    #: The storage served; the directory ``root`` on the local disk if None.
    fs: FileSystem | None = None
    #: Where the session runs calls on the files (Context.io): jobs by default.
    file_calls: str = THREADS

    def __post_init__(self) -> None:
        self.session = SftpSession(
            self.fs if self.fs is not None else LocalFileSystem(str(self.root)),
            self.policy,
            self.limits,
            self.username,
            lambda message, error: self.errors.append((message, error)),
            file_calls=self.file_calls,
        )
        self.held: list[Job] = []
        self._buffer = b""
        self._next_id = 1

    def run_job(self, job: Job) -> None:
        effect = job.effect
        try:
            if isinstance(effect, Blocking):
                value = effect.function()
            else:
                value = effect.function(*effect.args)
        except Exception as exc:
            self.session.fail(job, exc)
        else:
            self.session.complete(job, value)

    def step(self) -> None:
        """Run the oldest held job; the jobs it leads to are held in turn."""
        self.run_job(self.held.pop(0))
        self.held.extend(self.session.take_jobs())

    def run(self) -> None:
        while True:
            # Taking the replies frees their budget, as the Twisted driver's writes do.
            self._buffer += b"".join(self.session.data_to_send())
            jobs = self.session.take_jobs()
            if not jobs:
                if self.session.has_output:
                    continue
                return
            if self.hold:
                self.held.extend(jobs)
                return
            for job in jobs:
                self.run_job(job)

    def feed(self, data: bytes) -> list[Reply]:
        self.session.receive_data(data)
        self.run()
        return self.replies()

    def replies(self) -> list[Reply]:
        self._buffer += b"".join(self.session.data_to_send())
        out = []
        while len(self._buffer) >= 4:
            (length,) = struct.unpack(">I", self._buffer[:4])
            if len(self._buffer) < 4 + length:
                break
            body = self._buffer[4 : 4 + length]
            self._buffer = self._buffer[4 + length :]
            kind = body[0]
            if kind == codes.SSH_FXP_VERSION:
                out.append(Reply(kind, 0, Reader(body, 1)))
            else:
                out.append(Reply(kind, int.from_bytes(body[1:5], "big"), Reader(body, 5)))
        return out

    # --- convenience requests --------------------------------------------------------------

    def init(self) -> Reply:
        (reply,) = self.feed(packet(codes.SSH_FXP_INIT, uint32(3)))
        return reply

    def call(self, kind: int, *fields: bytes | str) -> Reply:
        rid = self._next_id
        self._next_id += 1
        replies = self.feed(request(kind, rid, *fields))
        assert len(replies) == 1, replies
        assert replies[0].request_id == rid
        return replies[0]

    def status(self, kind: int, *fields: bytes | str) -> tuple[int, str]:
        return self.call(kind, *fields).status()

    def extended(self, name: str, *fields: bytes | str) -> Reply:
        return self.call(codes.SSH_FXP_EXTENDED, name, *fields)

    def open(self, path: str, pflags: int, attrs: Attrs | None = None) -> bytes:
        reply = self.call(codes.SSH_FXP_OPEN, path, uint32(pflags), (attrs or Attrs()).encode())
        assert reply.kind == codes.SSH_FXP_HANDLE, reply.status()
        return reply.body.string()

    def read(self, handle: bytes, offset: int, length: int) -> Reply:
        return self.call(codes.SSH_FXP_READ, s(handle), uint64(offset), uint32(length))

    def write(self, handle: bytes, offset: int, data: bytes) -> tuple[int, str]:
        return self.status(codes.SSH_FXP_WRITE, s(handle), uint64(offset), s(data))

    def close(self, handle: bytes) -> tuple[int, str]:
        return self.status(codes.SSH_FXP_CLOSE, s(handle))

    def names(self, reply: Reply) -> list[tuple[bytes, bytes, Attrs]]:
        assert reply.kind == codes.SSH_FXP_NAME, reply.status()
        count = reply.body.uint32()
        return [
            (reply.body.string(), reply.body.string(), Attrs.decode(reply.body))
            for _ in range(count)
        ]

    def attrs(self, reply: Reply) -> Attrs:
        assert reply.kind == codes.SSH_FXP_ATTRS, reply.status()
        return Attrs.decode(reply.body)

    def listdir(self, path: str) -> list[tuple[bytes, bytes, Attrs]]:
        reply = self.call(codes.SSH_FXP_OPENDIR, path)
        assert reply.kind == codes.SSH_FXP_HANDLE, reply.status()
        handle = reply.body.string()
        entries = []
        while True:
            reply = self.call(codes.SSH_FXP_READDIR, s(handle))
            if reply.kind == codes.SSH_FXP_STATUS:
                assert reply.status()[0] == SSH_FX_EOF
                break
            entries.extend(self.names(reply))
        assert self.close(handle)[0] == 0
        return entries

    def realpath(self, path: str) -> bytes:
        reply = self.call(codes.SSH_FXP_REALPATH, path)
        return self.names(reply)[0][0]
