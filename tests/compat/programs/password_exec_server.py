"""A password-authenticated server that runs two commands, in SpindleX's documented style."""

import sys
import threading

from spindlex import SSHServer, SSHServerManager
from spindlex.crypto.pkey import Ed25519Key
from spindlex.protocol.constants import (
    AUTH_FAILED,
    AUTH_SUCCESSFUL,
    SSH_OPEN_ADMINISTRATIVELY_PROHIBITED,
)

USERS = {"alice": "secret"}


class CommandServer(SSHServer):
    def check_auth_password(self, username, password):
        if USERS.get(username) == password:
            return AUTH_SUCCESSFUL
        return AUTH_FAILED

    def get_allowed_auths(self, username):
        return ["password"]

    def check_channel_request(self, kind, chanid):
        if kind == "session":
            return 0  # SSH_OPEN_CONNECT_SUCCESS, as SpindleX's documentation writes it
        return SSH_OPEN_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel, command):
        if command not in (b"whoami", b"uptime"):
            return False
        threading.Thread(target=self.run_command, args=(channel, command), daemon=True).start()
        return True

    def run_command(self, channel, command):
        if command == b"whoami":
            channel.sendall(b"alice\n")
        else:
            channel.sendall(b"up 42 days\n")
            channel.sendall_stderr(b"no load average here\n")
        channel.send_exit_status(0)
        channel.close()


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 2222
    host_key = Ed25519Key.generate()
    server = CommandServer()
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
