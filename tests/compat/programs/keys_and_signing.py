"""Key generation, files and signatures, then a server that trusts the key it made.

In SpindleX's documented style: generate(key_type=..., bits=...),
save_to_file(filename=...), from_private_key_file(filename=...), sign and
verify, fingerprints; the saved client key then logs in with a real client.
"""

import json
import os
import sys
import threading

from spindlex import SSHServer, SSHServerManager
from spindlex.crypto.pkey import ECDSAKey, Ed25519Key, PKey, RSAKey
from spindlex.protocol.constants import AUTH_FAILED, AUTH_SUCCESSFUL


class KeyServer(SSHServer):
    def __init__(self, user_key):
        super().__init__()
        self.user_key = user_key

    def get_allowed_auths(self, username):
        return ["publickey"]

    def check_auth_publickey(self, username, key):
        if (
            username == "alice"
            and key.get_public_key_bytes() == self.user_key.get_public_key_bytes()
        ):
            return AUTH_SUCCESSFUL
        return AUTH_FAILED

    def check_channel_exec_request(self, channel, command):
        def answer():
            channel.sendall(b"signed in with " + self.user_key.get_ssh_type().encode() + b"\n")
            channel.send_exit_status(0)
            channel.close()

        threading.Thread(target=answer, daemon=True).start()
        return True


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 2222
    directory = sys.argv[2] if len(sys.argv) > 2 else "."

    made = {
        "default": PKey.generate(),
        "rsa": PKey.generate(key_type="rsa", bits=2048),
        "ecdsa": ECDSAKey.generate(),
        "ed25519": Ed25519Key.generate(),
    }
    facts = {}
    for name, key in made.items():
        data = b"payload signed by " + name.encode()
        signature = key.sign(data)
        path = os.path.join(directory, f"id_{name}")
        key.save_to_file(filename=path)
        loaded = PKey.from_private_key_file(filename=path)
        facts[name] = {
            "type": key.get_ssh_type(),
            "algorithm": key.algorithm_name,
            "verified": key.verify(signature, data),
            "tampered": key.verify(signature, data + b"!"),
            "reloaded_same": loaded.get_public_key_bytes() == key.get_public_key_bytes(),
            "reloaded_verifies": loaded.verify(signature, data),
            "fingerprint": key.get_fingerprint(),
            "public": key.get_openssh_string(),
        }
    print(json.dumps(facts), flush=True)

    user_key = RSAKey.from_private_key_file(filename=os.path.join(directory, "id_rsa"))
    host_key = Ed25519Key.from_private_key_file(os.path.join(directory, "id_ed25519"))
    server = KeyServer(user_key)
    server.set_server_key(host_key)
    manager = SSHServerManager(server, host_key, "127.0.0.1", port)
    manager.start_server()
    print(f"listening on {port}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        manager.stop_server()


if __name__ == "__main__":
    main()
