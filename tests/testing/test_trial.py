"""trial: the manager's start_server() and spindlex_tw.testing inside trial's reactor.

trial runs in its own interpreter, as a user runs it; it fails a test on
ReactorAlreadyRunning and on anything left in the reactor (a dirty reactor).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.docs.support import python_env

pytestmark = pytest.mark.interop

TRIAL_MODULE = textwrap.dedent(
    """
    import os

    from twisted.internet import defer, reactor, task
    from twisted.trial import unittest

    from spindlex_tw import AUTH_SUCCESSFUL, Ed25519Key, SSHServer, SSHServerManager
    from spindlex_tw.testing import SSHServerMixin


    class Open(SSHServer):
        def check_auth_publickey(self, username, key):
            return AUTH_SUCCESSFUL

        def check_channel_exec_request(self, channel, command):
            channel.send(b"trial " + command + b"\\n")
            channel.send_exit_status(0)
            channel.close()
            return True


    class ManagerInTrial(unittest.TestCase):
        @defer.inlineCallbacks
        def test_start_wait_stop(self):
            manager = SSHServerManager(Open(), Ed25519Key.generate(), "127.0.0.1", 0)
            yield manager.start_server()
            # Only the reactor trial runs can fire this.
            yield task.deferLater(reactor, 0, lambda: None)
            self.assertTrue(manager.is_running())
            yield manager.stop_server()

        @defer.inlineCallbacks
        def test_again_after_trial_ran_the_reactor(self):
            manager = SSHServerManager(Open(), Ed25519Key.generate(), "127.0.0.1", 0)
            yield manager.start_server()
            yield task.deferLater(reactor, 0, lambda: None)
            yield manager.stop_server()


    class MixinInTrial(SSHServerMixin, unittest.TestCase):
        @defer.inlineCallbacks
        def test_openssh_by_key(self):
            server = yield self.serveSSH(Open())
            result = yield server.openssh().ssh("hello")
            self.assertEqual(result.check().stdout, b"trial hello\\n")

        @defer.inlineCallbacks
        def test_the_twistd_options_server(self):
            root = self.mktemp()
            os.makedirs(root)
            with open(os.path.join(root, "served.txt"), "w") as handle:
                handle.write("from twistd's options\\n")
            server = yield self.serveOptions(["--sftp-root", root])
            client = server.openssh(self.mktemp())
            result = yield client.sftp("get served.txt\\n")
            result.check()
            self.assertEqual(
                (client.directory / "served.txt").read_text(), "from twistd's options\\n"
            )
    """
)


def _trial(tmp_path: Path, module: str) -> subprocess.CompletedProcess[bytes]:
    (tmp_path / "test_in_trial.py").write_text(module)
    return subprocess.run(
        [sys.executable, "-m", "twisted.trial", "test_in_trial"],
        cwd=tmp_path,
        env=python_env(tmp_path),
        capture_output=True,
        timeout=180,
    )


def test_manager_and_mixin_in_trial(tmp_path: Path) -> None:
    result = _trial(tmp_path, TRIAL_MODULE)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert b"PASSED (successes=4)" in result.stdout
