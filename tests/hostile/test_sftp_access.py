"""No SFTP request widens what the access hooks allow (docs/sftp.md, "Hooks").

Each row of the table of hook calls per request is tried with a policy that
denies exactly that call, by a real client (paramiko, AsyncSSH, OpenSSH's
sftp) over SSH; the request must be refused, the files unchanged, and another
client must log in afterwards. The attacks of the docs/sftp.md example policy
and of ``twistd spindlex --read-only`` are tried the same way.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncssh
import paramiko
import pytest

from tests.support.harness import OpenSSH, ServerProcess
from tests.support.twistd import Twistd, isolated_home

SECRET = b"the secret\n"
DATA = b"public data\n"
MINE = b"my upload\n"


def _populate(root: Path) -> None:
    for entry in root.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    (root / "secret.txt").write_bytes(SECRET)
    (root / "data.txt").write_bytes(DATA)
    os.symlink("data.txt", root / "link")
    (root / "pub").mkdir()
    (root / "pub" / "old.txt").write_bytes(b"old\n")
    (root / "incoming" / "sub").mkdir(parents=True)
    (root / "incoming" / "mine.txt").write_bytes(MINE)


def _snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    found = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        data = path.read_bytes() if stat.S_ISREG(st.st_mode) else b""
        found[str(path.relative_to(root))] = (st.st_mode, st.st_nlink, data)
    return found


class Served:
    """A server process with the deny-list policy over ``root``, shared by this module."""

    def __init__(self, tmp: Path, policy: str) -> None:
        self.root = tmp / "root"
        self.root.mkdir()
        self.deny_file = tmp / "deny.json"
        self.deny_file.write_text("[]")
        self.process = ServerProcess(
            tmp,
            app="tests.support.access_apps:AccessServer",
            env={
                "SPINDLEX_TEST_SFTP_ROOT": str(self.root),
                "SPINDLEX_TEST_POLICY": policy,
                "SPINDLEX_TEST_DENY": str(self.deny_file),
            },
        )
        self.port = self.process.port

    def deny(self, *calls: tuple[str, str, str]) -> None:
        self.deny_file.write_text(json.dumps([list(call) for call in calls]))

    def access_calls(self) -> list[tuple[str, str, str]]:
        return [
            (h["type"], h["path"], h["mode"]) for h in self.process.hooks() if h["hook"] == "access"
        ]

    def reset(self) -> None:
        self.deny()
        _populate(self.root)
        self.process.record.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def deny_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = Served(tmp_path_factory.mktemp("deny"), "deny")
    yield served
    served.process.stop()


@pytest.fixture
def served(deny_server: Served) -> Iterator[Served]:
    deny_server.reset()
    yield deny_server
    deny_server.deny()  # the health check lists "/", which a case may have denied
    assert_healthy(deny_server.process)


def assert_healthy(process: ServerProcess) -> None:
    """The server still runs, logged no traceback, and a new client logs in and lists."""
    assert process.alive()
    with paramiko_sftp(process.port) as sftp:
        assert "secret.txt" in sftp.listdir("/")
    assert "Traceback" not in process.log(), process.log()


@contextmanager
def paramiko_sftp(port: int) -> Iterator[paramiko.SFTPClient]:
    transport = paramiko.Transport(("127.0.0.1", port))
    try:
        transport.connect(username="alice", password="secret")
        sftp = paramiko.SFTPClient.from_transport(transport)
        assert sftp is not None
        yield sftp
    finally:
        transport.close()


def with_asyncssh(port: int, scenario: Callable[[asyncssh.SFTPClient], Coroutine[Any, Any, None]]):
    async def run() -> None:
        async with (
            asyncssh.connect(
                "127.0.0.1",
                port,
                username="alice",
                password="secret",
                known_hosts=None,
                client_keys=None,
            ) as conn,
            conn.start_sftp_client() as sftp,
        ):
            await scenario(sftp)

    asyncio.run(asyncio.wait_for(run(), 60))


def refused(call: Callable[[], object]) -> None:
    with pytest.raises(PermissionError):
        call()


async def arefused(call: Coroutine[Any, Any, object]) -> None:
    with pytest.raises(asyncssh.SFTPPermissionDenied):
        await call


# --- OPEN ------------------------------------------------------------------------------------


def test_open_for_reading_asks_read(served: Served) -> None:
    served.deny(("file", "/data.txt", "r"))
    with paramiko_sftp(served.port) as sftp:
        refused(lambda: sftp.open("/data.txt", "r"))
        refused(lambda: sftp.open("/link", "r"))  # judged at the file the link leads to
    assert ("file", "/data.txt", "r") in served.access_calls()


def test_open_reading_and_writing_asks_both(served: Served) -> None:
    # A write-only drop box: uploads may be written, never read back.
    served.deny(("file", "/incoming/mine.txt", "r"))
    with paramiko_sftp(served.port) as sftp:
        refused(lambda: sftp.open("/incoming/mine.txt", "r+"))
        with sftp.open("/incoming/mine.txt", "a") as appending:
            appending.write(b"more\n")
    assert (served.root / "incoming" / "mine.txt").read_bytes() == MINE + b"more\n"


@pytest.mark.parametrize("flags", ["write", "truncate", "create", "append"])
def test_open_that_may_change_the_file_asks_write(served: Served, flags: str) -> None:
    served.deny(("file", "/data.txt", "w"))
    pflags = {
        "write": asyncssh.FXF_WRITE,
        "truncate": asyncssh.FXF_TRUNC,  # O_RDONLY|O_TRUNC still truncates
        "create": asyncssh.FXF_CREAT,
        "append": asyncssh.FXF_APPEND,
    }[flags]

    async def scenario(sftp: asyncssh.SFTPClient) -> None:
        await arefused(sftp.open("/data.txt", pflags))
        await arefused(sftp.open("/link", pflags | asyncssh.FXF_READ))

    before = _snapshot(served.root)
    with_asyncssh(served.port, scenario)
    assert _snapshot(served.root) == before


def test_open_with_create_asks_write_of_the_directory(served: Served, tmp_path: Path) -> None:
    served.deny(("dir", "/incoming", "w"))
    upload = tmp_path / "upload.txt"
    upload.write_bytes(b"replaced\n")
    client = OpenSSH(tmp_path, served.port)
    result = client.sftp(
        "alice",
        "secret",
        f"put {upload} /incoming/new.txt\nput {upload} /incoming/mine.txt\n",
    )
    assert b"Permission denied" in result.stderr, result.stderr
    assert not (served.root / "incoming" / "new.txt").exists()
    # No name is added by replacing the contents of one that exists.
    assert (served.root / "incoming" / "mine.txt").read_bytes() == b"replaced\n"

    async def scenario(sftp: asyncssh.SFTPClient) -> None:
        await arefused(sftp.open("/incoming/excl.txt", "xb"))

    with_asyncssh(served.port, scenario)
    assert sorted(p.name for p in (served.root / "incoming").iterdir()) == ["mine.txt", "sub"]


# --- requests on names -----------------------------------------------------------------------


def test_stat_lstat_readlink_ask_read(served: Served) -> None:
    served.deny(("file", "/link", "r"))
    with paramiko_sftp(served.port) as sftp:
        refused(lambda: sftp.lstat("/link"))
        refused(lambda: sftp.readlink("/link"))
        assert sftp.stat("/link").st_size == len(DATA)  # STAT judges the file it leads to
    served.deny(("file", "/data.txt", "r"))
    with paramiko_sftp(served.port) as sftp:
        refused(lambda: sftp.stat("/link"))


def test_opendir_asks_read_of_the_directory(served: Served) -> None:
    served.deny(("dir", "/pub", "r"))
    with paramiko_sftp(served.port) as sftp:
        refused(lambda: sftp.listdir("/pub"))


def test_setstat_asks_write(served: Served) -> None:
    served.deny(("file", "/data.txt", "w"))
    before = _snapshot(served.root)
    with paramiko_sftp(served.port) as sftp:
        refused(lambda: sftp.chmod("/data.txt", 0o777))
        refused(lambda: sftp.truncate("/link", 0))  # SETSTAT with a size, through the link
        refused(lambda: sftp.utime("/data.txt", (1, 1)))
    assert _snapshot(served.root) == before


def test_fsetstat_on_a_read_handle_asks_write(served: Served) -> None:
    served.deny(("file", "/data.txt", "w"))
    before = _snapshot(served.root)
    with paramiko_sftp(served.port) as sftp, sftp.open("/data.txt", "r") as handle:
        refused(lambda: handle.chmod(0o777))
        refused(lambda: handle.truncate(0))
        assert handle.read() == DATA
    assert _snapshot(served.root) == before


def test_lsetstat_asks_write_of_the_link_itself(served: Served) -> None:
    served.deny(("file", "/link", "w"))
    times = asyncssh.SFTPAttrs(atime=1, mtime=1)

    async def scenario(sftp: asyncssh.SFTPClient) -> None:
        await arefused(sftp.setstat("/link", times, follow_symlinks=False))

    with_asyncssh(served.port, scenario)
    assert (served.root / "link").lstat().st_mtime != 1
    assert ("file", "/link", "w") in served.access_calls()


@pytest.mark.parametrize("denied", [("file", "/incoming/mine.txt", "w"), ("dir", "/incoming", "w")])
def test_remove_asks_write_of_the_file_and_its_directory(
    served: Served, denied: tuple[str, str, str]
) -> None:
    served.deny(denied)
    with paramiko_sftp(served.port) as sftp:
        refused(lambda: sftp.remove("/incoming/mine.txt"))
    assert (served.root / "incoming" / "mine.txt").read_bytes() == MINE


@pytest.mark.parametrize("denied", [("dir", "/incoming/new", "w"), ("dir", "/incoming", "w")])
def test_mkdir_asks_write_of_the_new_directory_and_its_parent(
    served: Served, denied: tuple[str, str, str]
) -> None:
    served.deny(denied)
    with paramiko_sftp(served.port) as sftp:
        refused(lambda: sftp.mkdir("/incoming/new"))
    assert not (served.root / "incoming" / "new").exists()


@pytest.mark.parametrize("denied", [("dir", "/incoming/sub", "w"), ("dir", "/incoming", "w")])
def test_rmdir_asks_write_of_the_directory_and_its_parent(
    served: Served, denied: tuple[str, str, str]
) -> None:
    served.deny(denied)
    with paramiko_sftp(served.port) as sftp:
        refused(lambda: sftp.rmdir("/incoming/sub"))
    assert (served.root / "incoming" / "sub").is_dir()


RENAME_DENIALS = [
    ("file", "/incoming/mine.txt", "w"),
    ("dir", "/incoming", "w"),
    ("file", "/pub/old.txt", "w"),
    ("dir", "/pub", "w"),
]


@pytest.mark.parametrize("denied", RENAME_DENIALS)
@pytest.mark.parametrize("request_name", ["rename", "posix-rename"])
def test_rename_asks_write_of_both_names_and_directories(
    served: Served, denied: tuple[str, str, str], request_name: str
) -> None:
    served.deny(denied)
    before = _snapshot(served.root)
    with paramiko_sftp(served.port) as sftp:
        if request_name == "rename":
            (served.root / "pub" / "old.txt").unlink()  # RENAME never replaces
            before = _snapshot(served.root)
            refused(lambda: sftp.rename("/incoming/mine.txt", "/pub/old.txt"))
        else:
            refused(lambda: sftp.posix_rename("/incoming/mine.txt", "/pub/old.txt"))
    assert _snapshot(served.root) == before


@pytest.mark.parametrize(
    "denied",
    [("file", "/secret.txt", "w"), ("file", "/incoming/x", "w"), ("dir", "/incoming", "w")],
)
def test_hardlink_asks_write_of_the_source_and_the_new_name(
    served: Served, denied: tuple[str, str, str]
) -> None:
    served.deny(denied)

    async def scenario(sftp: asyncssh.SFTPClient) -> None:
        await arefused(sftp.link("/secret.txt", "/incoming/x"))

    with_asyncssh(served.port, scenario)
    assert not (served.root / "incoming" / "x").exists()
    assert (served.root / "secret.txt").stat().st_nlink == 1


@pytest.mark.parametrize("denied", [("file", "/incoming/l", "w"), ("dir", "/incoming", "w")])
def test_symlink_asks_write_of_the_new_name(served: Served, denied: tuple[str, str, str]) -> None:
    served.deny(denied)
    with paramiko_sftp(served.port) as sftp:
        refused(lambda: sftp.symlink("/secret.txt", "/incoming/l"))
    assert not (served.root / "incoming" / "l").is_symlink()


def test_symlink_target_is_judged_where_the_link_leads(served: Served) -> None:
    served.deny(("file", "/secret.txt", "w"))
    with paramiko_sftp(served.port) as sftp:
        sftp.symlink("/secret.txt", "/incoming/l")
        refused(lambda: sftp.open("/incoming/l", "w"))
        refused(lambda: sftp.chmod("/incoming/l", 0o666))
        with sftp.open("/incoming/l", "r") as handle:
            assert handle.read() == SECRET
    assert (served.root / "secret.txt").read_bytes() == SECRET


# --- requests on handles and requests with no hook call --------------------------------------


def test_fsync_needs_a_handle_opened_for_writing(served: Served) -> None:
    async def scenario(sftp: asyncssh.SFTPClient) -> None:
        async with sftp.open("/data.txt", "rb") as reading:
            await arefused(reading.fsync())
        async with sftp.open("/incoming/mine.txt", "ab") as writing:
            await writing.write(b"x")
            await writing.fsync()

    with_asyncssh(served.port, scenario)


def test_copy_data_needs_a_target_opened_for_writing(served: Served) -> None:
    async def scenario(sftp: asyncssh.SFTPClient) -> None:
        async with (
            sftp.open("/incoming/mine.txt", "rb") as source,
            sftp.open("/data.txt", "rb") as target,
        ):
            await arefused(sftp.remote_copy(source, target))

    with_asyncssh(served.port, scenario)
    assert (served.root / "data.txt").read_bytes() == DATA


def test_path_resolution_asks_no_hook(served: Served) -> None:
    served.deny(
        ("file", "/incoming", "r"),
        ("dir", "/incoming", "r"),
        ("file", "/", "r"),
        ("dir", "/", "r"),
    )
    with paramiko_sftp(served.port) as sftp:
        assert sftp.normalize("/incoming/../incoming") == "/incoming"  # REALPATH
        # Requests paramiko has no method for, sent as it sends any extended request.
        kind, reply = sftp._request(paramiko.sftp.CMD_EXTENDED, "expand-path@openssh.com", "~/x")
        assert kind == paramiko.sftp.CMD_NAME and reply.get_int() == 1
        assert reply.get_text() == "/x"
        kind, reply = sftp._request(paramiko.sftp.CMD_EXTENDED, "home-directory", "")
        assert kind == paramiko.sftp.CMD_NAME and reply.get_int() == 1
        assert reply.get_text() == "/"
    assert served.access_calls() == []


# --- the attacks of the issue, against the docs example and twistd --------------------------


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = Served(tmp_path_factory.mktemp("docs"), "docs")
    yield served
    served.process.stop()


def test_docs_policy_holds_against_every_way_to_a_new_name(docs_server: Served) -> None:
    """docs/sftp.md's policy: everything may be read; only /incoming may be written."""
    served = docs_server
    served.reset()
    tmp = served.root.parent
    evil = tmp / "evil.txt"
    evil.write_bytes(b"overwritten\n")
    commands = [
        "ln /secret.txt /incoming/hard",  # hardlink@openssh.com
        f"put {evil} /incoming/hard",  # a new file, not the secret
        "ln -s /secret.txt /incoming/soft",  # a link is allowed...
        f"put {evil} /incoming/soft",  # ...and writing through it is judged at /secret.txt
        "chmod 666 /incoming/soft",
        "rename /secret.txt /incoming/moved",  # posix-rename
        "rm /secret.txt",
        "mkdir /incoming/sub2",
        f"get /secret.txt {tmp}/fetched.txt",
    ]
    client = OpenSSH(tmp, served.port)
    result = client.sftp("alice", "secret", "\n".join(commands) + "\n")
    assert (served.root / "secret.txt").read_bytes() == SECRET
    assert (served.root / "secret.txt").stat().st_nlink == 1
    # ln, put and chmod through the link, rename, rm, mkdir.
    assert result.stderr.count(b"Permission denied") == 6, result.stderr
    assert stat.S_IMODE((served.root / "secret.txt").stat().st_mode) == 0o644
    assert (served.root / "incoming" / "hard").read_bytes() == b"overwritten\n"
    assert not (served.root / "incoming" / "moved").exists()
    assert not (served.root / "incoming" / "sub2").exists()
    assert (tmp / "fetched.txt").read_bytes() == SECRET

    async def scenario(sftp: asyncssh.SFTPClient) -> None:
        await arefused(sftp.link("/secret.txt", "/incoming/hard2"))
        await arefused(sftp.rename("/secret.txt", "/incoming/moved"))
        await arefused(sftp.open("/incoming/soft", "r+b"))
        await arefused(sftp.setstat("/incoming/soft", asyncssh.SFTPAttrs(size=0)))

    with_asyncssh(served.port, scenario)
    assert (served.root / "secret.txt").read_bytes() == SECRET
    assert_healthy(served.process)


def test_twistd_read_only_refuses_every_new_name(tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    _populate(served)
    before = _snapshot(served)
    server = Twistd(
        [
            "spindlex",
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--auth",
            "memory:alice:secret",
            "--read-only",
        ],
        cwd=served,
        env=isolated_home(tmp_path),
    )
    try:
        [port] = server.ports()

        async def scenario(sftp: asyncssh.SFTPClient) -> None:
            await arefused(sftp.link("/secret.txt", "/incoming/hard"))
            await arefused(sftp.symlink("/secret.txt", "/incoming/soft"))
            await arefused(sftp.posix_rename("/incoming/mine.txt", "/pub/old.txt"))
            await arefused(sftp.open("/data.txt", "r+b"))
            await arefused(
                sftp.setstat("/link", asyncssh.SFTPAttrs(mtime=1, atime=1), follow_symlinks=False)
            )
            async with sftp.open("/data.txt", "rb") as reading:
                await arefused(reading.fsync())
                await arefused(reading.chmod(0o777))

        with_asyncssh(port, scenario)
        assert _snapshot(served) == before
        with paramiko_sftp(port) as sftp:
            assert sftp.open("/secret.txt").read() == SECRET
    finally:
        server.stop()
