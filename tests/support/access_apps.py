"""An SSH server whose SFTP sessions ask an access policy the test picks, for tests/hostile.

Environment of the server process:

- ``SPINDLEX_TEST_SFTP_ROOT``: the served directory.
- ``SPINDLEX_TEST_POLICY``: ``docs`` runs ``PrivateUploads`` of the first example of
  docs/sftp.md, as printed there ("everything may be read; only /incoming may
  be written"); ``deny`` grants every hook call except the ``[hook, path, mode]``
  triples listed (as JSON, with client paths such as ``"/incoming"``) in the file
  ``SPINDLEX_TEST_DENY``, read at each call so one server serves many cases.

Every access-hook call is appended to ``SPINDLEX_TEST_RECORD`` as
``{"hook": "access", "type": "file"|"dir", "path": client path, "mode": ..., "granted": ...}``.
Logins are those of :class:`tests.support.apps.TestServer` (alice/secret).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from spindlex_tw.server.sftp_server import SFTPServer
from tests.docs.support import source
from tests.support.apps import TestServer, record


def docs_policy() -> type[SFTPServer]:
    """The ``PrivateUploads`` class of docs/sftp.md, run from the page's own text."""
    namespace: dict[str, Any] = {"__name__": "docs_sftp_example"}
    exec(compile(source("sftp-1"), "docs/sftp.md", "exec"), namespace)
    policy: type[SFTPServer] = namespace["PrivateUploads"]
    return policy


class DenyListed(SFTPServer):
    """Grants every hook call but those listed in the file ``$SPINDLEX_TEST_DENY``."""

    def _granted(self, kind: str, path: str, mode: str) -> bool:
        denied = json.loads(Path(os.environ["SPINDLEX_TEST_DENY"]).read_text() or "[]")
        return [kind, path, mode] not in denied

    def check_file_access(self, path: str, mode: str) -> bool:
        return self._granted("file", _client_path(self, path), mode)

    def check_directory_access(self, path: str, mode: str) -> bool:
        return self._granted("dir", _client_path(self, path), mode)


def _client_path(server: SFTPServer, host_path: str) -> str:
    relative = os.path.relpath(host_path, server.root_path)
    return "/" if relative == "." else "/" + relative


def recorded(policy: type[SFTPServer]) -> type[SFTPServer]:
    """``policy`` with each access-hook call and its answer appended to the record."""

    class Recorded(policy):  # type: ignore[valid-type,misc]
        def check_file_access(self, path: str, mode: str) -> bool:
            granted = super().check_file_access(path, mode)
            record("access", type="file", path=_client_path(self, path), mode=mode, granted=granted)
            return granted

        def check_directory_access(self, path: str, mode: str) -> bool:
            granted = super().check_directory_access(path, mode)
            record("access", type="dir", path=_client_path(self, path), mode=mode, granted=granted)
            return granted

    return Recorded


class AccessServer(TestServer):
    def __init__(self) -> None:
        super().__init__()
        chosen = os.environ["SPINDLEX_TEST_POLICY"]
        self.policy = recorded(docs_policy() if chosen == "docs" else DenyListed)

    def check_channel_subsystem_request(self, channel: Any, name: str) -> bool:
        if name != "sftp":
            return False
        self.policy(channel, os.environ["SPINDLEX_TEST_SFTP_ROOT"])
        return True
