"""An operator's console for a running server, in SpindleX's documented style.

It starts the server and reads commands, one a line: ``stats`` prints the
manager's statistics and open connections, ``close ID`` drops a connection
with close_connection(). End of input (or Ctrl-C) stops the server.
"""

import json
import sys

from spindlex import SSHServer, SSHServerManager
from spindlex.crypto.pkey import Ed25519Key
from spindlex.protocol.constants import AUTH_FAILED, AUTH_SUCCESSFUL


class QuietServer(SSHServer):
    def check_auth_password(self, username, password):
        return AUTH_SUCCESSFUL if password == "secret" else AUTH_FAILED


def say(**fields):
    print(json.dumps(fields), flush=True)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 2222
    host_key = Ed25519Key.generate()
    server = QuietServer()
    server.set_server_key(host_key)
    manager = SSHServerManager(server, host_key, "127.0.0.1", port)
    manager.set_max_connections(5)
    manager.set_auth_timeout(30)
    manager.start_server()
    say(event="started", running=manager.is_running())
    try:
        for line in sys.stdin:
            command, _, argument = line.strip().partition(" ")
            if command == "stats":
                say(
                    event="stats",
                    count=manager.get_connection_count(),
                    stats=manager.get_connection_stats(),
                    active=manager.get_active_connections(),
                )
            elif command == "close":
                say(event="close", closed=manager.close_connection(argument))
    except KeyboardInterrupt:
        pass
    manager.stop_server()
    say(event="stopped", running=manager.is_running())


if __name__ == "__main__":
    main()
