"""Testing a server built on spindlex_tw: trial, pytest-twisted and plain pytest.

Start any ``SSHServer`` (or ``twistd spindlex``'s service from its options)
on an ephemeral 127.0.0.1 port with a fresh host key, a known_hosts line, a
client key pair and a password, then drive it with OpenSSH, Paramiko or
AsyncSSH already set up to trust it. See docs/recipes.md for whole tests.

Nothing else in spindlex_tw imports this package (a layer contract checks it).
"""

from spindlex_tw.testing.credentials import Credentials
from spindlex_tw.testing.openssh import BlockingOpenSSH, OpenSSH, Result
from spindlex_tw.testing.running import (
    ReactorServer,
    RunningServer,
    ThreadedServer,
    start_options_server,
    start_options_threaded,
    start_server,
    start_threaded,
)
from spindlex_tw.testing.trial import SSHServerMixin, serve_for_test, serve_options_for_test

__all__ = [
    "BlockingOpenSSH",
    "Credentials",
    "OpenSSH",
    "ReactorServer",
    "Result",
    "RunningServer",
    "SSHServerMixin",
    "ThreadedServer",
    "serve_for_test",
    "serve_options_for_test",
    "start_options_server",
    "start_options_threaded",
    "start_server",
    "start_threaded",
]
