"""An SFTP server for one user, confined to a directory, in SpindleX's documented style."""

import os
import sys
import threading

from spindlex import SFTPServer, SSHServer, SSHServerManager
from spindlex.crypto.pkey import Ed25519Key
from spindlex.protocol.constants import AUTH_FAILED, AUTH_SUCCESSFUL


class FileServer(SSHServer):
    def __init__(self, root):
        super().__init__()
        self.root = root

    def check_auth_password(self, username, password):
        if (username, password) == ("alice", "secret"):
            return AUTH_SUCCESSFUL
        return AUTH_FAILED

    def check_channel_subsystem_request(self, channel, name):
        if name != "sftp":
            return False
        SFTPServer(channel, self.root)
        return True


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 2222
    root = sys.argv[2] if len(sys.argv) > 2 else os.getcwd()
    host_key = Ed25519Key.generate()
    server = FileServer(root)
    server.set_server_key(host_key)
    manager = SSHServerManager(server, host_key, "127.0.0.1", port)
    manager.start_server()
    print(f"listening on {port}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        manager.stop_server()
        print("stopped", flush=True)


if __name__ == "__main__":
    main()
