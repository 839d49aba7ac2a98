"""``SSHServer``: the hooks an application overrides.

One ``SSHServer`` instance serves every connection. Each hook may return a
plain value, a ``Deferred`` or a coroutine; anything but a clear grant (an
exception, a timeout, ``None``, ``False`` where a code is expected) refuses.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from spindlex_tw.exceptions import ServerKeyMissing
from spindlex_tw.protocol.constants import (
    AUTH_FAILED,
    CHANNEL_SESSION,
    SSH_OPEN_ADMINISTRATIVELY_PROHIBITED,
    SSH_OPEN_CONNECT_SUCCESS,
    SSH_OPEN_UNKNOWN_CHANNEL_TYPE,
)
from spindlex_tw.tx.application import default_hook
from spindlex_tw.tx.factory import connections_serving

if TYPE_CHECKING:
    import socket

    from spindlex_tw.crypto.pkey import PKey
    from spindlex_tw.tx.channel import Channel


class SSHServer:
    """Base class of SSH server applications: override the hooks you need."""

    def __init__(self) -> None:
        self._server_key: PKey | None = None
        self._authenticated_users: dict[str, bool] = {}
        self._lock = threading.Lock()

    # --- host key and sockets ---------------------------------------------------------

    def set_server_key(self, server_key: PKey) -> None:
        self._server_key = server_key

    def get_server_key(self) -> PKey | None:
        return self._server_key

    def start_server(self, sock: socket.socket, timeout: float | None = None) -> Any:
        """Serve an already accepted socket on the reactor; returns the connection.

        ``timeout`` bounds the key exchange and login (the login grace time).
        Safe to call from any thread; the reactor must be running or be started later.
        """
        from spindlex_tw.server.adopt import adopt_socket

        if self._server_key is None:
            raise ServerKeyMissing("set_server_key() must be called before start_server()")
        return adopt_socket(self, [self._server_key], sock, timeout)

    # --- authentication hooks ----------------------------------------------------------

    @default_hook
    def check_auth_password(self, username: str, password: str) -> int:
        """AUTH_SUCCESSFUL, AUTH_FAILED or AUTH_PARTIAL; the default refuses."""
        return AUTH_FAILED

    @default_hook
    def check_auth_publickey(self, username: str, key: PKey) -> int:
        """Called for a key the client offers, and again once its signature verified."""
        return AUTH_FAILED

    @default_hook
    def get_authorized_principals(self, username: str) -> list[str] | None:
        """Certificate principals that may log in as ``username``; None: the name itself.

        As sshd's AuthorizedPrincipalsFile: ``twistd spindlex --app`` asks it
        for certificates of ``--trusted-user-ca-keys`` CAs. An application
        checking certificates in ``check_auth_publickey`` decides for itself.
        """
        return None

    @default_hook
    def check_auth_keyboard_interactive(self, username: str, submethods: str) -> int:
        return AUTH_FAILED

    @default_hook
    def get_keyboard_interactive_prompts(
        self, username: str, submethods: str
    ) -> tuple[str, str, list[tuple[str, bool]]] | None:
        """``(name, instruction, [(prompt, echo), ...])`` to ask, or ``None``."""
        return None

    @default_hook
    def check_auth_keyboard_interactive_response(self, username: str, responses: list[str]) -> int:
        return AUTH_FAILED

    @default_hook
    def get_allowed_auths(self, username: str) -> list[str]:
        return ["password", "publickey"]

    @default_hook
    def check_auth_gssapi_with_mic(
        self, username: str, gss_authenticated: int, cc_file: str | None
    ) -> int:
        """A Kerberos login (gssapi-with-mic) whose MIC verified; the default refuses.

        ``gss_authenticated`` is AUTH_SUCCESSFUL when the client's principal maps
        to ``username``, AUTH_FAILED when it maps elsewhere; ``cc_file`` is the
        path of its delegated credentials cache, or None. Offered only with
        ``ServerSettings.gssapi`` set and the method in ``get_allowed_auths``
        (docs/hooks.md).
        """
        return AUTH_FAILED

    @default_hook
    def get_banner(self) -> str | None:
        return None

    @default_hook
    def on_authentication_successful(self, username: str, method: str) -> None:
        with self._lock:
            self._authenticated_users[username] = True

    @default_hook
    def on_authentication_failed(self, username: str, method: str) -> None:
        """Called after each refused attempt."""

    # --- channel hooks --------------------------------------------------------------------

    @default_hook
    def check_channel_request(self, kind: str, chanid: int) -> int:
        """0 to accept, or an SSH_OPEN_* reason; the default accepts sessions only."""
        if kind == CHANNEL_SESSION:
            return SSH_OPEN_CONNECT_SUCCESS
        return SSH_OPEN_UNKNOWN_CHANNEL_TYPE

    @default_hook
    def check_channel_exec_request(self, channel: Channel, command: bytes) -> bool:
        return False

    @default_hook
    def check_channel_shell_request(self, channel: Channel) -> bool:
        return False

    @default_hook
    def check_channel_subsystem_request(self, channel: Channel, name: str) -> bool:
        return False

    @default_hook
    def check_channel_pty_request(
        self,
        channel: Channel,
        term: str,
        width: int,
        height: int,
        pixelwidth: int,
        pixelheight: int,
        modes: bytes,
    ) -> bool:
        return True

    @default_hook
    def check_channel_window_change_request(
        self, channel: Channel, width: int, height: int, pixelwidth: int, pixelheight: int
    ) -> bool:
        return True

    @default_hook
    def check_channel_x11_request(
        self,
        channel: Channel,
        single_connection: bool,
        auth_protocol: str,
        auth_cookie: bytes,
        screen_number: int,
    ) -> bool:
        return False

    @default_hook
    def check_channel_forward_agent_request(self, channel: Channel) -> bool:
        """``ssh -A`` (``auth-agent-req@openssh.com``); the default refuses.

        When granted, ``channel.agent_socket`` is the path of a Unix socket
        (private to this connection) whose every connection reaches the
        client's agent: give it to the session's program as ``SSH_AUTH_SOCK``.
        """
        return False

    @default_hook
    def check_channel_env_request(self, channel: Channel, name: str, value: str) -> bool:
        return False

    @default_hook
    def check_channel_signal_request(self, channel: Channel, signal_name: str) -> bool:
        """A ``signal`` request (RFC 4254 6.9); the name is without "SIG"."""
        return False

    @default_hook
    def check_channel_direct_tcpip_request(
        self, chanid: int, origin: tuple[str, int], destination: tuple[str, int]
    ) -> int:
        """Policy for ``ssh -L`` / ``-D``: 0 to connect, else an SSH_OPEN_* reason.

        Consulted after ``check_channel_request("direct-tcpip", ...)`` accepted.
        """
        return SSH_OPEN_CONNECT_SUCCESS

    @default_hook
    def check_port_forward_request(self, address: str, port: int) -> bool:
        return False

    @default_hook
    def check_port_forward_cancel_request(self, address: str, port: int) -> bool:
        return True

    @default_hook
    def check_channel_direct_streamlocal_request(self, chanid: int, path: str) -> int:
        """Policy for ``ssh -L ...:/remote.sock``: 0 to connect to the Unix socket ``path``.

        Consulted after ``check_channel_request("direct-streamlocal@openssh.com", ...)``
        accepted; the default refuses (SSH_OPEN_ADMINISTRATIVELY_PROHIBITED).
        """
        return SSH_OPEN_ADMINISTRATIVELY_PROHIBITED

    @default_hook
    def check_streamlocal_forward_request(self, path: str) -> bool:
        """Policy for ``ssh -R /remote.sock:...``: listen on the Unix socket ``path``?"""
        return False

    @default_hook
    def check_streamlocal_forward_cancel_request(self, path: str) -> bool:
        return True

    @default_hook
    def check_global_request(self, kind: str, msg: Any) -> bool:
        return False

    @default_hook
    def on_channel_opened(self, channel: Channel) -> None:
        """Called when a channel has been opened."""

    @default_hook
    def on_channel_closed(self, channel: Channel) -> None:
        """Called when a channel has closed."""

    # --- management across connections ---------------------------------------------------

    def get_active_channels(self) -> list[Channel]:
        """The open channels of every connection serving this application, from any thread.

        The connections are the factories' (a manager's, ``start_server``'s...):
        this object keeps no list of its own.
        """
        return [ch for conn in connections_serving(self) for ch in conn.channels()]

    def get_channel_count(self) -> int:
        return len(self.get_active_channels())

    def close_channel(self, channel: Channel) -> None:
        channel.close()

    def close_all_channels(self) -> None:
        for channel in self.get_active_channels():
            channel.close()

    def is_channel_authorized(self, channel: Channel, username: str) -> bool:
        with self._lock:
            return self._authenticated_users.get(username, False)


__all__ = ["SSHServer"]
