"""What the adapter knows of the application it serves, without importing ``server/``.

The hook classes live above this layer. They mark the hooks whose answer is
only the SpindleX default with :func:`default_hook`, so the adapter (and the
twistd product composing an ``--app`` with its options) can tell a hook the
application wrote from one it inherited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])

_MARK = "_spindlex_default_hook"


def default_hook(func: _F) -> _F:
    """Mark ``func`` as the do-nothing default of a hook."""
    setattr(func, _MARK, True)
    return func


def writes_hook(app: object, name: str) -> bool:
    """Did ``app`` (its class, or what it was composed with) write hook ``name`` itself?"""
    method = getattr(app, name, None)
    return method is not None and not getattr(method, _MARK, False)


class Application(Protocol):
    """The hooks the adapter calls (``server.ssh_server.SSHServer`` is the base of every one).

    Each may answer with a value, a Deferred or a coroutine (see :mod:`.hooks`),
    so the answers are ``Any`` here and judged by the adapter.
    """

    def get_allowed_auths(self, username: str) -> Any: ...
    def get_banner(self) -> Any: ...
    def check_auth_password(self, username: str, password: str) -> Any: ...
    def check_auth_publickey(self, username: str, key: Any) -> Any: ...
    def check_auth_keyboard_interactive(self, username: str, submethods: str) -> Any: ...
    def get_keyboard_interactive_prompts(self, username: str, submethods: str) -> Any: ...
    def check_auth_gssapi_with_mic(
        self, username: str, gss_authenticated: int, cc_file: str | None
    ) -> Any: ...
    def check_auth_keyboard_interactive_response(
        self, username: str, responses: list[str]
    ) -> Any: ...
    def on_authentication_successful(self, username: str, method: str) -> Any: ...
    def on_authentication_failed(self, username: str, method: str) -> Any: ...
    def check_channel_request(self, kind: str, chanid: int) -> Any: ...
    def check_channel_exec_request(self, channel: Any, command: bytes) -> Any: ...
    def check_channel_shell_request(self, channel: Any) -> Any: ...
    def check_channel_subsystem_request(self, channel: Any, name: str) -> Any: ...
    def check_channel_pty_request(
        self,
        channel: Any,
        term: str,
        width: int,
        height: int,
        pixelwidth: int,
        pixelheight: int,
        modes: bytes,
    ) -> Any: ...
    def check_channel_window_change_request(
        self, channel: Any, width: int, height: int, pixelwidth: int, pixelheight: int
    ) -> Any: ...
    def check_channel_x11_request(
        self,
        channel: Any,
        single_connection: bool,
        auth_protocol: str,
        auth_cookie: bytes,
        screen_number: int,
    ) -> Any: ...
    def check_channel_env_request(self, channel: Any, name: str, value: str) -> Any: ...
    def check_channel_signal_request(self, channel: Any, signal_name: str) -> Any: ...
    def check_channel_direct_tcpip_request(
        self, chanid: int, origin: tuple[str, int], destination: tuple[str, int]
    ) -> Any: ...
    def check_port_forward_request(self, address: str, port: int) -> Any: ...
    def check_port_forward_cancel_request(self, address: str, port: int) -> Any: ...
    def check_global_request(self, kind: str, msg: Any) -> Any: ...
    def on_channel_opened(self, channel: Any) -> Any: ...
    def on_channel_closed(self, channel: Any) -> Any: ...
