"""SFTPServer subclasses the out-of-process tests load with ``--server-class``."""

from __future__ import annotations

from spindlex_tw.server.sftp_server import SFTPServer


class ReadOnlyServer(SFTPServer):
    """Everything may be read; nothing may be written."""

    def check_file_access(self, path: str, mode: str) -> bool:
        return mode == "r"

    def check_directory_access(self, path: str, mode: str) -> bool:
        return mode == "r"


class PrivateFilesServer(SFTPServer):
    """New files are private to their owner (and keep their execute bit)."""

    def get_file_permissions(self, path: str) -> int:
        return 0o700


class ThreadsServer(SFTPServer):
    """File calls on worker threads, wherever the root is."""

    disk_io = "threads"


class InlineServer(SFTPServer):
    """File calls on the event-loop thread, as "auto" does on tmpfs."""

    disk_io = "inline"


class AtomicUploadServer(SFTPServer):
    """Uploads written to a hidden temporary and renamed into place on CLOSE."""

    atomic_uploads = True
