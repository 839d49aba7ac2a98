"""Error handling with SpindleX's exceptions: every failure is caught as an SSHException.

Start without a host key, load a broken key file, bind a port already in
use, start twice, build an SFTPError from a status: each is caught by the
``except SSHException`` a SpindleX program writes. The SFTP server then
refuses the secret files.
"""

import os
import socket
import sys
import threading

from spindlex import SFTPServer, SSHServer, SSHServerManager
from spindlex.crypto.pkey import Ed25519Key
from spindlex.exceptions import (
    CryptoException,
    SFTPError,
    SSHException,
    TransportException,
)
from spindlex.protocol.constants import AUTH_FAILED, AUTH_SUCCESSFUL
from spindlex.protocol.sftp_constants import SSH_FX_PERMISSION_DENIED


class GuardedFiles(SFTPServer):
    def check_file_access(self, path, mode):
        return not os.path.basename(path).startswith("secret")


class GuardedServer(SSHServer):
    def __init__(self, root):
        super().__init__()
        self.root = root

    def check_auth_password(self, username, password):
        return AUTH_SUCCESSFUL if (username, password) == ("alice", "secret") else AUTH_FAILED

    def check_channel_subsystem_request(self, channel, name):
        if name == "sftp":
            GuardedFiles(channel, self.root)
            return True
        return False


def report(label, error):
    kinds = [
        k.__name__ for k in (TransportException, CryptoException, SFTPError) if isinstance(error, k)
    ]
    print(f"{label}: caught {type(error).__name__} {kinds} {error}", flush=True)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 2222
    root = sys.argv[2] if len(sys.argv) > 2 else os.getcwd()

    try:
        SSHServer().start_server(socket.socket())
    except SSHException as error:
        report("no host key", error)

    broken = os.path.join(root, "..", "broken_key")
    with open(broken, "w") as handle:
        handle.write("-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n")
    try:
        Ed25519Key.from_private_key_file(broken)
    except SSHException as error:
        report("broken key", error)

    host_key = Ed25519Key.generate()
    server = GuardedServer(root)
    server.set_server_key(host_key)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = SSHServerManager(server, host_key, "127.0.0.1", taken.getsockname()[1])
        try:
            busy.start_server()
        except SSHException as error:
            report("port in use", error)

    error = SFTPError.from_status(SSH_FX_PERMISSION_DENIED, filename="/etc/shadow")
    report("from_status", error)

    manager = SSHServerManager(server, host_key, "127.0.0.1", port)
    manager.start_server()
    try:
        manager.start_server()
    except SSHException as error:
        report("started twice", error)
    print(f"listening on {port}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        manager.stop_server()


if __name__ == "__main__":
    main()
