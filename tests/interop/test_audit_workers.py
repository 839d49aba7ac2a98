"""Audit session ids with --workers: distinct across the processes writing one audit log.

Two AsyncSSH logins, each forced onto a different worker by pausing the other
(SIGSTOP: a paused process cannot accept from the shared socket), append to
one ``--audit-log``; their ``session_id`` values must differ in the random
part, not only in the client's port.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.support.clients import asyncssh_connect
from tests.support.twistd import PASSWORD, Twistd, isolated_home
from tests.support.waiting import free_port, poll

pytestmark = pytest.mark.interop

LISTENING = re.compile(r"listening on 127\.0\.0\.1:(?P<port>\d+) \(worker (?P<pid>\d+)\)")
SESSION_ID = re.compile(r"127\.0\.0\.1:\d+#(?P<random>[0-9a-f]{16})")


def _events(log: Path, kind: str) -> list[dict[str, Any]]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [e for e in map(json.loads, lines) if e["audit_event"] == kind]


def test_two_workers_give_distinct_session_ids(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "audit.jsonl"
    server = Twistd(
        ["spindlex", "--workers", "2", "--listen", f"tcp:{port}:interface=127.0.0.1",
         "--audit-log", str(log)],
        cwd=tmp_path,
        env=isolated_home(tmp_path),
    )  # fmt: skip
    try:
        user, password = server.wait_for(PASSWORD).group("user", "password")
        pids = {int(m["pid"]) for m in server.wait_for_all(LISTENING, 2)}
        assert len(pids) == 2

        async def login() -> None:
            connecting = asyncssh_connect(port, username=user, password=password)
            async with connecting as conn, conn.start_sftp_client() as sftp:
                await sftp.getcwd()

        for paused in pids:
            os.kill(paused, signal.SIGSTOP)
            try:
                asyncio.run(asyncio.wait_for(login(), 60))
            finally:
                os.kill(paused, signal.SIGCONT)
        ends = poll(
            lambda: found if len(found := _events(log, "session_end")) == 2 else None,
            what="both sessions to end in the audit log",
        )
        ids = [event["session_id"] for event in ends]
        randoms = [match["random"] for i in ids if (match := SESSION_ID.fullmatch(i))]
        assert len(randoms) == 2, ids
        assert randoms[0] != randoms[1], ids
        starts = {event["session_id"] for event in _events(log, "session_start")}
        assert starts == set(ids)
        assert server.stop() == 0
    finally:
        server.kill()
