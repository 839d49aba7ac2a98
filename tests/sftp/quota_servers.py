"""SFTPServer subclasses with quotas, loaded by the stdio server with ``--server-class``."""

from __future__ import annotations

from spindlex_tw.fs.quota import Quota
from spindlex_tw.server.sftp_server import SFTPServer


class HomeQuotaServer(SFTPServer):
    """The whole root is served; only /home counts, against 64 KiB and 4 files."""

    quota = Quota(max_bytes=64 * 1024, max_files=4)
    quota_scope = "/home"
