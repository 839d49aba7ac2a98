"""What ``twistd spindlex`` keeps between runs: the state directory and the default host key."""

from __future__ import annotations

import os

from twisted.logger import Logger
from twisted.python import usage

from spindlex_tw.crypto.pkey import Ed25519Key, KeyFileError, PKey
from spindlex_tw.twistd import startup

log = Logger(namespace="spindlex_tw.service")

HOST_KEY_NAME = "host_ed25519"


def state_directory() -> str:
    """Per-user state: ``$XDG_STATE_HOME/spindlex_tw`` or ``~/.local/state/spindlex_tw``."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(base, "spindlex_tw")


def default_host_key() -> PKey:
    """The embedded default's ed25519 host key: made on first use, then reused."""
    directory = state_directory()
    path = os.path.join(directory, HOST_KEY_NAME)
    try:
        if os.path.exists(path):
            return Ed25519Key.from_private_key_file(path)
        startup.make_state_directory(directory)
        key = Ed25519Key.generate()
        # Published with link(), which never replaces: of several servers
        # starting at once on one state directory, the first key wins and the
        # others serve it too, instead of each serving a key the next overwrote.
        fresh = f"{path}.{os.getpid()}.new"
        key.save_to_file(fresh)
        try:
            os.link(fresh, path)
        except FileExistsError:
            return Ed25519Key.from_private_key_file(path)
        finally:
            os.unlink(fresh)
    except KeyFileError as exc:
        raise usage.UsageError(f"default host key: {exc}") from exc
    except OSError as exc:
        raise usage.UsageError(f"cannot create {directory}: {exc.strerror}") from exc
    log.info("created host key {path}", path=path)
    return key
