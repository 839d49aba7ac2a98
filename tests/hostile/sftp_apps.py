"""The test server with SFTP limits taken from the environment, for the memory tests."""

from __future__ import annotations

import os
from typing import Any

from tests.support.apps import TestServer


class LimitedSFTPServer(TestServer):
    """``SPINDLEX_TEST_SFTP_WRITE_LENGTH`` sets ``max_write_length`` (one copy-data step)."""

    def check_channel_subsystem_request(self, channel: Any, name: str) -> bool:
        if name != "sftp":
            return False
        from spindlex_tw.server.sftp_server import SFTPServer

        class Served(SFTPServer):
            disk_io = os.environ.get("SPINDLEX_TEST_DISK_IO", "auto")
            max_write_length = int(
                os.environ.get("SPINDLEX_TEST_SFTP_WRITE_LENGTH", SFTPServer.max_write_length)
            )

        Served(channel, os.environ.get("SPINDLEX_TEST_SFTP_ROOT", os.getcwd()))
        return True
