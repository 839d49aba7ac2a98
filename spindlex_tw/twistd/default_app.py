"""The ``SSHServer`` that ``twistd spindlex`` runs, built from its options.

:class:`DefaultServer` answers every hook from a :class:`ServerConfig`:
passwords (``--auth`` or the one-time password), an ``authorized_keys`` file
with its per-key options, SFTP of one directory (read-only if asked), a
banner, and with ``--exec`` real processes for exec and shell requests, a pty,
signals, ``env`` for ``LANG``/``LC_*``, forwarding (TCP, Unix sockets, the
agent, and X11 with ``--x11-forwarding``).

With ``--app module:Class`` it is the options' policy beside the user's
application (:mod:`spindlex_tw.twistd.composition`): whatever the user's
class writes wins, whatever it leaves at the ``SSHServer`` default is filled
in from the options.

Some options belong to the key a client logged in with (``from=``,
``command=``, ``no-pty``...), so the hooks need to know the connection they
are called for (``current_connection()``); :class:`PolicyProtocol`
connections keep those options for the rest of the session.
"""

from __future__ import annotations

import fnmatch
import getpass
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from twisted.internet import defer, threads
from twisted.logger import Logger

from spindlex_tw.core.requests import DirectStreamlocal, X11Request
from spindlex_tw.crypto.certificate import SSHCertificate
from spindlex_tw.fs import checksums
from spindlex_tw.protocol.constants import (
    AUTH_FAILED,
    AUTH_SUCCESSFUL,
    CHANNEL_DIRECT_TCPIP,
    CHANNEL_SESSION,
    SSH_OPEN_ADMINISTRATIVELY_PROHIBITED,
    SSH_OPEN_CONNECT_SUCCESS,
    SSH_OPEN_UNKNOWN_CHANNEL_TYPE,
)
from spindlex_tw.server.manager import ManagedFactory
from spindlex_tw.server.sftp_server import SFTPServer
from spindlex_tw.server.ssh_server import SSHServer
from spindlex_tw.twistd import checksums as checksum_exec
from spindlex_tw.twistd import hostkeys, process, xauth
from spindlex_tw.twistd.authorized_keys import AuthorizedKeysFile, KeyOptions
from spindlex_tw.twistd.certificates import CertificatePolicy
from spindlex_tw.twistd.credentials import CredentialsError, Passwords, user_settings
from spindlex_tw.twistd.limits import SftpLimits
from spindlex_tw.twistd.users import Account, UserHomes, UserPolicy, server_class_for
from spindlex_tw.tx import kerberos, protocol
from spindlex_tw.tx.application import writes_hook
from spindlex_tw.tx.factory import SSHServerFactory
from spindlex_tw.tx.hooks import is_code
from spindlex_tw.tx.protocol import SSHServerProtocol

if TYPE_CHECKING:
    from spindlex_tw.crypto.pkey import PKey
    from spindlex_tw.tx.channel import Channel

log = Logger(namespace="spindlex_tw.app")

#: Environment variables a client may set for --exec processes (as Debian's sshd AcceptEnv).
ACCEPTED_ENV = ("LANG", "LC_*")


class PolicyProtocol(SSHServerProtocol):
    """A connection that remembers the options of the authorized_keys line it logged in with."""

    def __init__(self, factory: SSHServerFactory) -> None:
        super().__init__(factory)
        self.candidate_key: KeyOptions | None = None
        self.key_options: KeyOptions | None = None

    def authenticated(self, username: str, method: str) -> None:
        # The key whose signature just verified (a query never sets it).
        self.key_options = self.candidate_key if method == "publickey" else None
        super().authenticated(username, method)

    def peer_address(self) -> str:
        peer = self.transport.getPeer() if self.transport is not None else None
        return str(getattr(peer, "host", ""))


class PolicyFactory(ManagedFactory):
    """Builds PolicyProtocol connections (and keeps the manager's statistics).

    After each login it names every host key to the client, so OpenSSH's
    ``UpdateHostKeys`` learns keys added and removed by a reload (:mod:`.hostkeys`).
    """

    connection_class = PolicyProtocol

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.global_handlers[hostkeys.PROVE] = hostkeys.prover(lambda: self.host_keys)

    def connection_authenticated(self, conn: SSHServerProtocol) -> None:
        super().connection_authenticated(conn)
        hostkeys.announce(conn, self.host_keys)


class OptionsSFTPServer(SFTPServer):
    """SFTP with the options' limits (``--sftp-max-handles``...), set before the session starts."""

    def __init__(self, channel: Channel, root_path: str, limits: SftpLimits) -> None:
        self.max_open_handles = limits.max_open_handles
        self.max_outstanding_bytes = limits.max_outstanding_bytes
        self.max_outstanding_requests = limits.max_outstanding_requests
        super().__init__(channel, root_path)


class AtomicUploadSFTPServer(OptionsSFTPServer):
    """SFTP whose uploads land whole or not at all (``--atomic-uploads``)."""

    atomic_uploads = True


class ReadOnlySFTPServer(OptionsSFTPServer):
    """SFTP that lets clients read and list, and refuses every change."""

    def check_file_access(self, path: str, mode: str) -> bool:
        return mode == "r"

    def check_directory_access(self, path: str, mode: str) -> bool:
        return mode == "r"


@dataclass
class ServerConfig:
    """What the options decided; the defaults grant nothing."""

    passwords: Passwords = field(default_factory=Passwords)
    authorized_keys: AuthorizedKeysFile | None = None
    #: The login name that the authorized_keys file grants (the file's owner, as for sshd).
    key_user: str = field(default_factory=getpass.getuser)
    sftp_root: str | None = None
    read_only: bool = False
    banner: str | None = None
    #: None: --exec is off.
    exec_settings: process.ExecSettings | None = None
    #: Each user's home, read-only setting and quota (--home, --quota...).
    users: UserHomes | None = None
    #: --atomic-uploads: SFTP uploads appear under their name only once complete.
    atomic_uploads: bool = False
    sftp_limits: SftpLimits = field(default_factory=SftpLimits)
    #: --trusted-user-ca-keys and --revoked-keys.
    certificates: CertificatePolicy = field(default_factory=CertificatePolicy)
    #: --x11-forwarding (with --exec): grant x11-req.
    x11_forwarding: bool = False
    #: --permit-user-environment: the key's environment= options reach --exec programs.
    permit_user_environment: bool = False


# Which methods to offer: when the options configure them, or when the user's class
# implements one of the hooks behind them (then the user's hook decides).
_METHODS: tuple[tuple[str, Callable[[ServerConfig], bool], tuple[str, ...]], ...] = (
    (
        "publickey",
        lambda cfg: cfg.authorized_keys is not None or bool(cfg.certificates.trusted_cas),
        ("check_auth_publickey",),
    ),
    ("password", lambda cfg: bool(cfg.passwords), ("check_auth_password",)),
    (
        "keyboard-interactive",
        lambda cfg: bool(cfg.passwords),
        (
            "check_auth_password",
            "check_auth_keyboard_interactive",
            "get_keyboard_interactive_prompts",
        ),
    ),
    # --keytab (or ServerSettings.gssapi) enables Kerberos for the connection's server.
    ("gssapi-with-mic", lambda cfg: _kerberos_enabled(), ("check_auth_gssapi_with_mic",)),
)


class DefaultServer(SSHServer):
    """The hooks of ``twistd spindlex``, configured by :attr:`config`."""

    def __init__(self) -> None:
        super().__init__()
        #: The --app application this policy stands beside, if any.
        self.app: SSHServer | None = None
        self.configure(ServerConfig())

    def _app_writes(self, hook: str) -> bool:
        return self.app is not None and writes_hook(self.app, hook)

    def configure(self, config: ServerConfig) -> None:
        """Adopt ``config``; also sets up the state a user's ``__init__`` may have skipped."""
        self.config = config
        self.processes: dict[Channel, process.ProcessSession] = {}
        self.sftp_sessions: set[SFTPServer] = set()

    # --- authentication ---------------------------------------------------------------------

    def get_banner(self) -> str | None:
        return self.config.banner

    def get_allowed_auths(self, username: str) -> list[str]:
        return [
            method
            for method, configured, hooks in _METHODS
            if configured(self.config) or any(self._app_writes(hook) for hook in hooks)
        ]

    def check_auth_password(self, username: str, password: str) -> Any:
        if not self.config.passwords:
            return AUTH_FAILED
        # bcrypt is slow on purpose: keep it off the reactor thread.
        d = threads.deferToThread(self.config.passwords.check, username, password)
        return d.addCallback(lambda ok: AUTH_SUCCESSFUL if ok is True else AUTH_FAILED)

    def check_auth_publickey(self, username: str, key: PKey) -> Any:
        if username != self.config.key_user:
            return AUTH_FAILED
        # A PolicyProtocol under twistd; anything else cannot hold a key's options.
        conn = protocol.current_connection()
        if not isinstance(conn, PolicyProtocol):
            conn = None
        if (
            isinstance(key, SSHCertificate)
            and self.app is not None
            and self._app_writes("get_authorized_principals")
        ):
            # The --app names the principals a trusted CA's certificate must carry.
            asked = defer.maybeDeferred(self.app.get_authorized_principals, username)
            return asked.addCallback(
                lambda names: self._key_decision(conn, key, username, _principals(names))
            )
        return self._key_decision(conn, key, username, None)

    def _key_decision(
        self,
        conn: PolicyProtocol | None,
        key: PKey,
        username: str,
        principals: tuple[str, ...] | None,
    ) -> int:
        address = conn.peer_address() if conn is not None else ""
        options = self.config.certificates.authorize(
            self.config.authorized_keys, key, username, address, principals
        )
        if options is None:
            return AUTH_FAILED
        if conn is None:
            # Without a connection to hold them, a line's options could not be enforced.
            if options != KeyOptions():
                log.warn("a key with options needs the PolicyFactory; refused")
                return AUTH_FAILED
        elif conn.auth is not None and conn.auth.signature_verified:
            conn.candidate_key = options
        return AUTH_SUCCESSFUL

    def check_auth_gssapi_with_mic(
        self, username: str, gss_authenticated: int, cc_file: str | None
    ) -> int:
        # The keytab's realm vouches that the principal maps to this name: that is the login.
        return AUTH_SUCCESSFUL if is_code(gss_authenticated, AUTH_SUCCESSFUL) else AUTH_FAILED

    # --- what the logged-in key allows -----------------------------------------------------------

    @staticmethod
    def _key_options() -> KeyOptions:
        conn = protocol.current_connection()
        if isinstance(conn, PolicyProtocol) and conn.key_options:
            return conn.key_options
        return KeyOptions()

    def _forwarding_allowed(self) -> bool:
        # Forwarding gives no more than a shell does, so it comes with --exec only.
        return self.config.exec_settings is not None and self._key_options().port_forwarding

    # --- channels and forwarding -----------------------------------------------------------------

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == CHANNEL_SESSION:
            return SSH_OPEN_CONNECT_SUCCESS
        if kind in (CHANNEL_DIRECT_TCPIP, DirectStreamlocal.NAME):
            if self._forwarding_allowed():
                return SSH_OPEN_CONNECT_SUCCESS
            return SSH_OPEN_ADMINISTRATIVELY_PROHIBITED
        return SSH_OPEN_UNKNOWN_CHANNEL_TYPE

    def check_channel_direct_tcpip_request(
        self, chanid: int, origin: tuple[str, int], destination: tuple[str, int]
    ) -> int:
        if self._forwarding_allowed() and self._key_options().allows_open(*destination):
            return SSH_OPEN_CONNECT_SUCCESS
        return SSH_OPEN_ADMINISTRATIVELY_PROHIBITED

    def check_port_forward_request(self, address: str, port: int) -> bool:
        return self._forwarding_allowed() and self._key_options().allows_listen(address, port)

    # Unix sockets: anywhere the server's user may connect or create one, as
    # for sshd's user; permitopen/permitlisten are about TCP and do not apply.
    def check_channel_direct_streamlocal_request(self, chanid: int, path: str) -> int:
        if self._forwarding_allowed():
            return SSH_OPEN_CONNECT_SUCCESS
        return SSH_OPEN_ADMINISTRATIVELY_PROHIBITED

    def check_streamlocal_forward_request(self, path: str) -> bool:
        # Relative to what? The server's directory is no answer a client can know.
        return self._forwarding_allowed() and os.path.isabs(path)

    def check_channel_forward_agent_request(self, channel: Channel) -> bool:
        if self.config.exec_settings is None:
            _refused("agent forwarding", channel, "start the server with --exec to allow it")
            return False
        if not self._key_options().agent_forwarding:
            _refused("agent forwarding", channel, "the key's authorized_keys options forbid it")
            return False
        return True

    def check_channel_x11_request(
        self,
        channel: Channel,
        single_connection: bool,
        auth_protocol: str,
        auth_cookie: bytes,
        screen_number: int,
    ) -> bool:
        if self.config.exec_settings is None or not self.config.x11_forwarding:
            _refused("x11", channel, "start the server with --exec --x11-forwarding to allow it")
            return False
        if not self._key_options().x11_forwarding:
            _refused("x11", channel, "the key's authorized_keys options forbid it")
            return False
        request = X11Request(single_connection, auth_protocol, auth_cookie, screen_number)
        if not xauth.valid_request(request):
            _refused("x11", channel, "the cookie is not one xauth may be given")
            return False
        return True

    # --- sessions -------------------------------------------------------------------------------

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
        if self.config.exec_settings is None:
            _refused("pty", channel, "SFTP only; start the server with --exec to allow it")
            return False
        if not self._key_options().pty:
            _refused("pty", channel, "the key's authorized_keys options forbid it")
            return False
        return True

    def check_channel_window_change_request(
        self, channel: Channel, width: int, height: int, pixelwidth: int, pixelheight: int
    ) -> bool:
        running = self.processes.get(channel)
        if running is not None:
            running.resize((width, height, pixelwidth, pixelheight))
        return self.config.exec_settings is not None

    def check_channel_env_request(self, channel: Channel, name: str, value: str) -> bool:
        if self.config.exec_settings is None:
            return False
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in ACCEPTED_ENV)

    def check_channel_signal_request(self, channel: Channel, signal_name: str) -> bool:
        running = self.processes.get(channel)
        return running is not None and running.signal(signal_name)

    def check_channel_exec_request(self, channel: Channel, command: bytes) -> bool:
        if (
            self.config.sftp_root is not None
            and self._key_options().command is None
            and checksums.is_checksum_name(command)
        ):
            # Answered inside the SFTP view even with --exec, so the sums match what SFTP served.
            account = self._sftp_account()
            _reactor().callLater(0, checksum_exec.start, channel, command, account)
            return True
        return self._run(channel, command)

    def check_channel_shell_request(self, channel: Channel) -> bool:
        return self._run(channel, None)

    def check_channel_subsystem_request(self, channel: Channel, name: str) -> bool:
        if self._key_options().command is not None:
            # As sshd: a forced command replaces subsystems too.
            return self._run(channel, None)
        if name != "sftp" or self.config.sftp_root is None:
            return False
        account = self._sftp_account()
        if account is None:
            return False
        server_class: type[OptionsSFTPServer] = OptionsSFTPServer
        if account.read_only:
            server_class = ReadOnlySFTPServer
        elif self.config.atomic_uploads:
            server_class = AtomicUploadSFTPServer
        user_class = server_class_for(server_class, account)
        session = user_class(channel, account.root, self.config.sftp_limits)
        self.sftp_sessions.add(session)
        session.protocol.when_finished().addBoth(lambda _: self.sftp_sessions.discard(session))
        return True

    def _sftp_account(self) -> Account | None:
        """The logged-in user's SFTP account; None (refused, logged) if they cannot have one."""
        conn = protocol.current_connection()
        username = conn.username if conn is not None else None
        config = self.config
        if config.users is None:
            homes = UserHomes(
                UserPolicy(),
                config.sftp_root or os.getcwd(),
                config.read_only,
                partial(user_settings, config.passwords),
            )
            config.users = homes
        try:
            account = config.users.account(username or "")
        except (CredentialsError, ValueError, OSError) as exc:
            log.error("no SFTP for {user}: {error}", user=username, error=str(exc))
            return None
        if account is None:
            log.error("no SFTP for {user}: the name cannot name a home", user=username)
        return account

    def _run(self, channel: Channel, command: bytes | None) -> bool:
        settings = self.config.exec_settings
        if settings is None:
            request = "shell" if command is None else "exec"
            _refused(request, channel, "SFTP only; start the server with --exec to allow it")
            return False
        extra = {**self._key_environment(), **_connection_environment(channel)}
        if channel.agent_socket is not None:
            extra["SSH_AUTH_SOCK"] = channel.agent_socket
        if channel.x11_display is not None:
            extra["DISPLAY"] = channel.x11_display
        forced = self._key_options().command
        if forced is not None:
            if command is not None:
                extra["SSH_ORIGINAL_COMMAND"] = command.decode("utf-8", "replace")
            command = forced.encode("utf-8")
        reactor = _reactor()
        # Start after this hook's SUCCESS reply has gone out, so output follows it.
        if channel.x11_request is not None:
            # The program starts once its X11 cookie is in its own authority file.
            written = defer.ensureDeferred(xauth.authority_file(reactor, channel))
            written.addCallback(self._start_x11_process, reactor, channel, command, settings, extra)
        else:
            reactor.callLater(0, self._start_process, reactor, channel, command, settings, extra)
        return True

    def _key_environment(self) -> dict[str, str]:
        """The key's environment= options, if --permit-user-environment lets them count."""
        pairs = self._key_options().environment
        if pairs and not self.config.permit_user_environment:
            log.info(
                "environment= options of the key ignored: --permit-user-environment is off"
            )
            return {}
        return dict(pairs)

    def _start_x11_process(
        self,
        authority: str | None,
        reactor: Any,
        channel: Channel,
        command: bytes | None,
        settings: process.ExecSettings,
        extra: dict[str, str],
    ) -> None:
        if authority is not None:
            extra["XAUTHORITY"] = authority
        self._start_process(reactor, channel, command, settings, extra)

    def _start_process(
        self,
        reactor: Any,
        channel: Channel,
        command: bytes | None,
        settings: process.ExecSettings,
        extra: dict[str, str],
    ) -> None:
        if channel.closed:
            return
        self.processes[channel] = process.start(reactor, channel, command, settings, extra)
        channel.on_close(self._process_channel_closed)

    def _process_channel_closed(self, channel: Channel) -> None:
        self.processes.pop(channel, None)

    # --- shutdown -------------------------------------------------------------------------------

    def sftp_finished(self) -> defer.Deferred[Any]:
        """Fires once every SFTP session has ended with its writes done and files closed."""
        waits = [session.protocol.when_finished() for session in list(self.sftp_sessions)]
        return defer.gatherResults(waits, consumeErrors=True)


def _principals(names: object) -> tuple[str, ...] | None:
    """get_authorized_principals' answer: None means the login name, anything odd nothing."""
    if names is None:
        return None
    if isinstance(names, list | tuple) and all(isinstance(n, str) for n in names):
        return tuple(names)
    log.error("get_authorized_principals must return a list of names; no principal accepted")
    return ()


def _refused(request: str, channel: Channel, reason: str) -> None:
    conn = protocol.current_connection()
    log.info(
        "refused {request} request from {user} at {peer}: {reason}",
        request=request,
        user=conn.username if conn is not None else None,
        peer=conn.peer if conn is not None else None,
        reason=reason,
        channel=channel.get_id(),
        event="request_refused",
    )


def _kerberos_enabled() -> bool:
    conn = protocol.current_connection()
    return conn is not None and conn.factory.settings.gssapi is not None


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


def _connection_environment(channel: Channel) -> dict[str, str]:
    # KRB5CCNAME: the delegated Kerberos credentials of a gssapi-with-mic login.
    delegated = kerberos.environment(protocol.current_connection())
    try:
        peer_host, peer_port = channel.getpeername()[:2]
        local_host, local_port = channel.getsockname()[:2]
    except (AttributeError, TypeError, ValueError):
        return delegated
    return {
        "SSH_CLIENT": f"{peer_host} {peer_port} {local_port}",
        "SSH_CONNECTION": f"{peer_host} {peer_port} {local_host} {local_port}",
        **delegated,
    }
