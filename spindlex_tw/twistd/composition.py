"""``twistd spindlex [--app module:Class]``: the server twistd runs, built from the options.

No class is made at run time. :class:`ComposedServer` holds the user's
application (an instance of exactly its own class) and the options' policy
(a :class:`~spindlex_tw.twistd.default_app.DefaultServer`), and answers each
hook with one of them, chosen once:

- a hook the application wrote is the application's, always;
- a hook the application did not write, but whose question its own hook
  already answered, stays the SpindleX default (``check_channel_request``
  granting ``direct-tcpip`` is the decision; the options' stricter
  ``check_channel_direct_tcpip_request`` must not take it back);
- any other hook the options' policy wrote is the policy's (passwords, keys,
  SFTP, --exec ...); the rest are the application's inherited defaults.

Everything that is not a hook (the application's own attributes, its
connection bookkeeping) is the application's, so the same class behaves the
same under ``SSHServerManager`` and under twistd.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from spindlex_tw.server.ssh_server import SSHServer
from spindlex_tw.twistd.default_app import DefaultServer, ServerConfig
from spindlex_tw.tx.application import writes_hook

if TYPE_CHECKING:
    from twisted.internet import defer

#: Every hook of the SpindleX API, by name.
HOOKS = tuple(
    name
    for name in vars(SSHServer)
    if name.startswith(("check_", "on_")) or name in {
        "get_allowed_auths",
        "get_banner",
        "get_keyboard_interactive_prompts",
    }
)

#: hook -> the more general hook whose answer, when the application wrote it, decides it too.
DECIDED_BY = {"check_channel_direct_tcpip_request": "check_channel_request"}


class ComposedServer:
    """The user's ``app`` served with ``policy`` filling in the hooks the app left alone."""

    def __init__(self, app: SSHServer, policy: DefaultServer) -> None:
        self.app = app
        self.policy = policy
        policy.app = app  # the policy offers the methods whose hooks the app wrote
        for name in HOOKS:
            setattr(self, name, self._choose(name))

    def _choose(self, name: str) -> Any:
        if writes_hook(self.app, name):
            return getattr(self.app, name)
        general = DECIDED_BY.get(name)
        if general is not None and writes_hook(self.app, general):
            return getattr(self.app, name)
        if writes_hook(self.policy, name):
            return getattr(self.policy, name)
        return getattr(self.app, name)

    def __getattr__(self, name: str) -> Any:
        # Only reached for what is not a hook: the application's own attributes.
        return getattr(self.app, name)

    @property
    def config(self) -> ServerConfig:
        return self.policy.config

    def configure(self, config: ServerConfig) -> None:
        self.policy.configure(config)

    def sftp_finished(self) -> defer.Deferred[Any]:
        return self.policy.sftp_finished()


def build_server(
    app_class: type[SSHServer] | None, config: ServerConfig
) -> DefaultServer | ComposedServer:
    """The server twistd runs: the options alone, or ``app_class`` with the options beside it."""
    if app_class is None or issubclass(app_class, DefaultServer):
        server = (app_class or DefaultServer)()
        server.configure(config)
        return server
    policy = DefaultServer()
    policy.configure(config)
    return ComposedServer(app_class(), policy)
