"""``twistd spindlex``: the command line (``Options``) and the service (``makeService``).

``makeService(options)`` returns an ``IService`` that can also live in a
``.tac`` file's ``MultiService`` beside other services::

    options = ServiceOptions()
    options.parseOptions(["--listen", "tcp:2222:interface=127.0.0.1", "--sftp-root", "/srv"])
    makeService(options).setServiceParent(application)

``ServiceOptions`` raises ``usage.UsageError`` as Twisted options do;
``Options``, what twistd uses, turns that into one line on stderr and exit
status 2 (twistd itself would print the whole help and exit 1).

Everything an option names is checked while parsing, so a mistake is
reported before anything starts: endpoint strings, key files, password files,
the ``--app`` class, numbers.
"""

from __future__ import annotations

import getpass
import importlib
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import IO, Any

from twisted.application import service
from twisted.internet import defer, endpoints
from twisted.logger import ILogObserver, Logger
from twisted.python import usage

from spindlex_tw.crypto.pkey import KeyFileError, PKey
from spindlex_tw.server.ssh_server import SSHServer
from spindlex_tw.twistd import forwarding_options, lifecycle, limits, process, siblings, startup
from spindlex_tw.twistd.audit_log import AuditLog, open_audit_log
from spindlex_tw.twistd.authorized_keys import AuthorizedKeysFile, OptionError
from spindlex_tw.twistd.certificates import OPTIONS as CERTIFICATE_OPTIONS
from spindlex_tw.twistd.certificates import opt_host_certificate, with_host_certificates
from spindlex_tw.twistd.certificates import resolve as resolve_certificates
from spindlex_tw.twistd.composition import ComposedServer, build_server
from spindlex_tw.twistd.credentials import (
    CredentialsError,
    MemoryPasswords,
    Passwords,
    one_time_password,
    parse_auth_spec,
    user_avatar,
    user_settings,
)
from spindlex_tw.twistd.default_app import DefaultServer, PolicyFactory, ServerConfig
from spindlex_tw.twistd.kerberos_options import OPTIONS as KERBEROS_OPTIONS
from spindlex_tw.twistd.kerberos_options import apply as apply_kerberos
from spindlex_tw.twistd.lifecycle import DEFAULT_DRAIN_TIMEOUT, Lifecycle, drain_timeout
from spindlex_tw.twistd.listening import Listener, ListenFailed
from spindlex_tw.twistd.parent_watch import stop_when_parent_leaves
from spindlex_tw.twistd.reload import Rereader, reload
from spindlex_tw.twistd.state import default_host_key, state_directory
from spindlex_tw.twistd.storage_s3 import OPTIONS as S3_OPTIONS
from spindlex_tw.twistd.text_log import FLAGS as LOG_FLAGS
from spindlex_tw.twistd.text_log import OPTIONS as LOG_OPTIONS
from spindlex_tw.twistd.text_log import TextLogChoice, TextLogFilter, for_twistd, text_log_choice
from spindlex_tw.twistd.users import OPTIONS as USER_OPTIONS
from spindlex_tw.twistd.users import UserHomes, UserPolicy
from spindlex_tw.tx import proxied
from spindlex_tw.tx.application import writes_hook
from spindlex_tw.tx.forwarding.remote import GATEWAY_PORTS
from spindlex_tw.tx.rekey_limit import parse_rekey_limit
from spindlex_tw.tx.settings import ServerSettings

log = Logger(namespace="spindlex_tw.service")

DEFAULT_LISTEN = "tcp:2222:interface=127.0.0.1"
@dataclass
class ServiceConfig:
    """Everything ``makeService`` needs, resolved from the options."""

    endpoints: list[tuple[str, Any]]
    host_keys: list[PKey]
    server: DefaultServer | ComposedServer
    settings: ServerSettings
    #: (user, password) of the embedded default's one-time password, to print once.
    one_time: tuple[str, str] | None = None
    warnings: list[str] = field(default_factory=list)
    #: Processes serving the TCP ports together (``--workers``), and the options
    #: the copies are started with.
    workers: int = 1
    arguments: list[str] = field(default_factory=list)
    #: Seconds running transfers and commands get to finish after SIGTERM.
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT
    #: Reads the host keys and the banner again on SIGHUP (None: nothing to read).
    files: Rereader | None = None
    #: --audit-log's open file, and --metrics' (description, endpoint, --workers' directory).
    audit_log: IO[str] | None = None
    metrics: tuple[str, Any, str | None] | None = None
    #: --log-level and --log-sftp: what twistd's text log shows.
    text_log: TextLogChoice = field(default_factory=TextLogChoice)


def _number(kind: Callable[[str], Any], minimum: float) -> Callable[[str, str], Any]:
    def convert(name: str, text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or value < minimum:
            raise usage.UsageError(f"--{name} expects a number of at least {minimum}, got {text!r}")
        return value

    return convert


# Numeric options: name -> (converter, where the value goes).
_NUMBERS: dict[str, tuple[Callable[[str, str], Any], Callable[[ServerSettings, Any], None]]] = {
    "max-connections": (
        _number(int, 1),
        lambda s, v: setattr(s, "max_connections", v),
    ),
    "login-grace": (
        _number(float, 0.001),
        lambda s, v: setattr(s, "login_grace", v),
    ),
    "max-auth-tries": (
        _number(int, 1),
        lambda s, v: setattr(s, "auth", replace(s.auth, max_failures=v)),
    ),
}


def load_app_class(spec: str) -> type[SSHServer]:
    """The class named by ``module:Class`` (an ``SSHServer`` subclass)."""
    module_name, sep, class_name = spec.partition(":")
    if not sep or not module_name or not class_name:
        raise usage.UsageError(f"--app expects module:Class, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise usage.UsageError(f"--app {spec}: cannot import {module_name}: {exc}") from exc
    target: Any = module
    for part in class_name.split("."):
        target = getattr(target, part, None)
    if not (isinstance(target, type) and issubclass(target, SSHServer)):
        raise usage.UsageError(f"--app {spec}: {class_name} is not an SSHServer subclass")
    return target


class ServiceOptions(usage.Options):
    """The options of ``twistd spindlex``; see ``twistd spindlex --help``."""

    synopsis = "[options]"
    longdesc = (
        "Serve SSH and SFTP with spindlex_tw. With no options: listen on "
        "tcp:2222:interface=127.0.0.1, serve the current directory by SFTP, keep an ed25519 "
        "host key in $XDG_STATE_HOME/spindlex_tw (or ~/.local/state/spindlex_tw), accept the "
        "keys of ~/.ssh/authorized_keys and print a one-time password for the current user. "
        "Password files hold user:hash lines with bcrypt ($2b$, htpasswd -B) or SHA-crypt "
        "($6$, openssl passwd -6) hashes; plain text is refused."
    )
    optFlags = [
        [
            "exec",
            None,
            "Run exec and shell requests as processes of the server's own user, with a pty "
            "if asked; also allows TCP forwarding (ssh -L/-R/-D).",
        ],
        ["read-only", None, "SFTP clients may read and list but change nothing."],
        [
            "atomic-uploads",
            None,
            "SFTP uploads are written to a hidden temporary name, renamed into place on close: "
            "a cut transfer leaves no partial file under the real name.",
        ],
        [
            "allow-privileged-ports",
            None,
            "ssh -R may listen on ports below 1024 (refused by default, as sshd does for "
            "users other than root).",
        ],
        *forwarding_options.FLAGS,
        *LOG_FLAGS,
    ]
    optParameters = [
        ["sftp-root", None, None, "Directory served by SFTP [default: the current directory]."],
        [
            "authorized-keys",
            None,
            None,
            "OpenSSH authorized_keys file (options from=, command=, restrict, no-pty, "
            "no-port-forwarding, permitopen= are enforced); its keys log in as the server's "
            "user [default without --auth: ~/.ssh/authorized_keys].",
        ],
        [
            "app",
            None,
            None,
            "module:Class of an SSHServer subclass; its own hooks win, the options fill in "
            "the rest.",
        ],
        *USER_OPTIONS,
        *S3_OPTIONS,
        ["max-connections", None, "100", "Concurrent connections; more are refused."],
        ["login-grace", None, "30", "Seconds a client has to log in."],
        ["max-auth-tries", None, "6", "Failed login attempts before disconnecting."],
        [
            "audit-log",
            None,
            None,
            "Append the audit events (logins, SFTP operations, commands, forwards, "
            "refusals) to FILE as JSON lines; see docs/audit.md.",
        ],
        *LOG_OPTIONS,
        [
            "metrics",
            None,
            None,
            "Serve Prometheus metrics at /metrics on this Twisted endpoint, e.g. "
            "tcp:9122:interface=127.0.0.1 (needs prometheus-client); see docs/metrics.md.",
        ],
        [
            "rekey-limit",
            None,
            "default",
            "BYTES[:SECONDS], as sshd's RekeyLimit: re-key once either direction carried "
            "BYTES (K, M, G suffixes; default 1G) and, optionally, every SECONDS (90, 30m, "
            "1h; default 1h; none for never).",
        ],
        ["banner", None, None, "File whose text clients see before logging in."],
        *lifecycle.OPTIONS,
        [
            "host-key-passphrase-file",
            None,
            None,
            "File whose first line is the passphrase of the --host-key files.",
        ],
        [
            "gateway-ports",
            None,
            "no",
            "Where ssh -R listens, as sshd's GatewayPorts: no (the loopback, whatever the "
            "client asks), clientspecified (the address the client names) or yes (every "
            "interface).",
        ],
        [
            "workers",
            None,
            "1",
            "Serve from N processes accepting from the same TCP sockets; needs "
            "tcp:PORT endpoints. Limits apply per process.",
        ],
        *limits.OPTIONS,
        *CERTIFICATE_OPTIONS,
        *KERBEROS_OPTIONS,
    ]

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []
        self["host-key"] = []
        self["auth"] = []
        self._config: ServiceConfig | None = None
        self.arguments: list[str] = []  # as given, for the copies --workers starts

    def opt_listen(self, description: str) -> None:
        """Twisted server endpoint, e.g. unix:/run/ssh.sock; repeatable [default: tcp:2222]."""
        self["listen"].append(description)

    def opt_host_key(self, path: str) -> None:
        """Private host key file, one per key type; repeatable [default: see below]."""
        self["host-key"].append(path)

    opt_host_certificate = opt_host_certificate

    def opt_auth(self, spec: str) -> None:
        """memory:USER:PASSWORD, file:PATH of user:hash lines, or cred:MODULE:NAME of a
        twisted.cred checker (or Portal) of passwords; repeatable."""
        self["auth"].append(spec)

    def parseOptions(self, options: list[str] | None = None) -> None:
        self.arguments = list(sys.argv[1:] if options is None else options)
        super().parseOptions(options)

    @property
    def config(self) -> ServiceConfig:
        if self._config is None:
            raise RuntimeError("parseOptions() has not been called")
        return self._config

    def postOptions(self) -> None:
        self._config = self._resolve()
        self._config.text_log = text_log_choice(self)
        if self["audit-log"]:
            self._config.audit_log = open_audit_log(self["audit-log"])
        if self["metrics"]:
            from spindlex_tw.twistd.metrics import metrics_option

            self._config.metrics = metrics_option(self["metrics"], self._config.workers)

    # --- resolving each option -------------------------------------------------------------------

    def _resolve(self) -> ServiceConfig:
        settings = ServerSettings()
        for name, (convert, apply) in _NUMBERS.items():
            apply(settings, convert(name, str(self[name])))
        try:
            parse_rekey_limit(str(self["rekey-limit"])).apply(settings)
        except ValueError as exc:
            raise usage.UsageError(f"--rekey-limit: {exc}") from exc
        if self["gateway-ports"] not in GATEWAY_PORTS:
            raise usage.UsageError(
                f"--gateway-ports expects one of {', '.join(GATEWAY_PORTS)}, "
                f"got {self['gateway-ports']!r}"
            )
        settings.gateway_ports = self["gateway-ports"]
        settings.allow_privileged_ports = bool(self["allow-privileged-ports"])
        sftp_limits = limits.apply(self, settings)
        apply_kerberos(self, settings)
        listen = self._endpoints()
        host_keys = self._host_keys()
        app_class = load_app_class(self["app"]) if self["app"] else None
        server_config = ServerConfig(
            sftp_root=self._sftp_root(),
            read_only=bool(self["read-only"]),
            atomic_uploads=bool(self["atomic-uploads"]),
            banner=self._banner(),
            exec_settings=self._exec_settings(),
            sftp_limits=sftp_limits,
        )
        server_config.certificates = resolve_certificates(self)
        forwarding_options.apply(self, server_config)
        one_time = self._credentials(server_config, app_class)
        server_config.users = UserHomes(
            UserPolicy.from_options(self),
            server_config.sftp_root or os.getcwd(),
            server_config.read_only,
            partial(user_settings, server_config.passwords),
            partial(user_avatar, server_config.passwords),
        )
        try:
            server = build_server(app_class, server_config)
        except Exception as exc:
            raise usage.UsageError(f"--app {self['app']}: cannot create it: {exc!r}") from exc
        warnings = []
        if server_config.read_only and server_config.exec_settings is not None:
            warnings.append("--read-only limits SFTP only: --exec commands can still write")
        workers = _number(int, 1)("workers", str(self["workers"]))
        if workers > 1:
            for description, _ in listen:
                siblings.tcp_address(description)
        drain = drain_timeout(str(self["drain-timeout"]))
        files = Rereader(self._host_keys, self._banner, partial(limits.read, self))
        return ServiceConfig(
            listen, host_keys, server, settings, one_time, warnings, workers, self.arguments,
            drain, files,
        )  # fmt: skip

    def _endpoints(self) -> list[tuple[str, Any]]:
        from twisted.internet import reactor

        result = []
        for description in self["listen"] or [DEFAULT_LISTEN]:
            try:
                endpoint = endpoints.serverFromString(reactor, description)
            except Exception as exc:
                raise usage.UsageError(
                    f"--listen {description!r} is not a server endpoint: {exc}"
                ) from exc
            result.append((description, endpoint))
        return result

    def _host_keys(self) -> list[PKey]:
        passphrase = self._host_key_passphrase()
        if not self["host-key"]:
            return with_host_certificates(self, [default_host_key()])
        try:
            keys = [
                PKey.from_private_key_file(os.path.expanduser(p), passphrase)
                for p in self["host-key"]
            ]
        except KeyFileError as exc:
            raise usage.UsageError(f"--host-key: {exc}") from exc
        if len({key.get_name() for key in keys}) != len(keys):
            raise usage.UsageError("--host-key: two keys of the same type")
        return with_host_certificates(self, keys)

    def _host_key_passphrase(self) -> str | None:
        path = self["host-key-passphrase-file"]
        if path is None:
            return None
        if not self["host-key"]:
            raise usage.UsageError("--host-key-passphrase-file needs --host-key")
        try:
            with open(os.path.expanduser(path), encoding="utf-8") as handle:
                first = handle.readline(4096)
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise usage.UsageError(f"--host-key-passphrase-file {path}: {reason}") from exc
        return first.rstrip("\r\n")

    def _sftp_root(self) -> str:
        root = os.path.abspath(os.path.expanduser(self["sftp-root"] or os.getcwd()))
        if not os.path.isdir(root):
            raise usage.UsageError(f"--sftp-root {root} is not a directory")
        return root

    def _banner(self) -> str | None:
        path = self["banner"]
        if not path:
            return None
        try:
            with open(os.path.expanduser(path), encoding="utf-8") as handle:
                return handle.read(64 * 1024)
        except (OSError, UnicodeDecodeError) as exc:
            raise usage.UsageError(f"--banner {path}: {exc}") from exc

    def _exec_settings(self) -> process.ExecSettings | None:
        if not self["exec"]:
            return None
        cwd = os.path.abspath(os.path.expanduser(self["sftp-root"] or os.getcwd()))
        return process.ExecSettings(cwd=cwd, environment=process.base_environment())

    def _credentials(
        self, server_config: ServerConfig, app_class: type[SSHServer] | None
    ) -> tuple[str, str] | None:
        """Fill in passwords and keys; returns the one-time (user, password), if any."""
        passwords = Passwords()
        try:
            for spec in self["auth"]:
                passwords.add(parse_auth_spec(spec))
        except CredentialsError as exc:
            raise usage.UsageError(str(exc)) from exc
        server_config.passwords = passwords
        keys_path = self["authorized-keys"]
        embedded = not self["auth"] and not keys_path
        if embedded:
            keys_path = os.path.join(os.path.expanduser("~"), ".ssh", "authorized_keys")
        if keys_path and not _app_defines(app_class, "check_auth_publickey"):
            if not embedded and not os.path.exists(os.path.expanduser(keys_path)):
                # Nobody could log in with it: say so now, not at each refused login.
                raise usage.UsageError(f"--authorized-keys {keys_path}: no such file")
            keys = AuthorizedKeysFile(os.path.expanduser(keys_path))
            try:
                keys.check_readable()
            except OptionError as exc:
                raise usage.UsageError(f"--authorized-keys: {exc}") from exc
            server_config.authorized_keys = keys
        if embedded and not _app_defines(app_class, "check_auth_password"):
            # Worker copies (--workers) accept the password their parent printed.
            shared = os.environ.get(siblings.PASSWORD_ENV) if siblings.is_worker() else None
            user, password = getpass.getuser(), shared or one_time_password()
            passwords.add(MemoryPasswords({user: password}))
            return user, password
        return None


def _app_defines(app_class: type[SSHServer] | None, hook: str) -> bool:
    return app_class is not None and writes_hook(app_class, hook)


class Options(ServiceOptions):
    """``twistd spindlex``'s options: a mistake is one line on stderr and exit status 2."""

    def parseOptions(self, options: list[str] | None = None) -> None:
        try:
            super().parseOptions(options)
        except usage.UsageError as exc:
            message = " ".join(str(exc).split())
            sys.stderr.write(f"twistd spindlex: error: {message}\n")
            sys.stderr.flush()
            raise SystemExit(2) from None


class SpindleService(service.MultiService):
    """The SSH service: its listeners, a reload on SIGHUP and a graceful stop (see
    :mod:`spindlex_tw.twistd.lifecycle`: the drain, then SFTP writes reach the disk)."""

    def __init__(self, config: ServiceConfig, reactor: Any = None) -> None:
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.reactor = reactor
        self.config = config
        self.server = config.server
        #: twistd's pid file, removed if the start-up fails (twistd would leave it).
        self.pidfile: str | None = None
        #: Under twistd: its text log, filtered; set on the application as its log observer.
        self.text_log: TextLogFilter | None = None
        self.factory = PolicyFactory(self.server, config.host_keys, config.settings, reactor)
        self.lifecycle = Lifecycle(
            self.factory,
            reactor,
            config.drain_timeout,
            lambda: reload(self.factory, self.server.config, config.files),
            self.server.sftp_finished,
        )
        # Before the listeners: they start in order, and the first connection is audited.
        if config.audit_log is not None:
            AuditLog(config.audit_log).setServiceParent(self)
        if config.metrics is not None:
            from spindlex_tw.twistd.metrics import MetricsService

            MetricsService(*config.metrics).setServiceParent(self)
        if isinstance(self.server, ComposedServer):
            # The user's application asks get_active_channels() of itself.
            self.factory.applications += (self.server.app,)
        if config.workers > 1:
            self._share_listeners(config, reactor)
        else:
            for description, endpoint in config.endpoints:
                # haproxy: endpoints build each connection once the proxy names the client.
                factory = proxied.for_endpoint(
                    description, self.factory, reactor, config.settings.login_grace
                )
                Listener(description, endpoint, factory).setServiceParent(self)

    def _share_listeners(self, config: ServiceConfig, reactor: Any) -> None:
        """--workers: listen (or, in a copy, take the inherited sockets) and start the copies."""
        inherited = siblings.inherited_fds(len(config.endpoints))
        shared = []
        for (description, _), fd in zip(config.endpoints, inherited, strict=True):
            interface, port = siblings.tcp_address(description)
            listener = siblings.SharedListener(interface, port, self.factory, reactor, fd)
            listener.setServiceParent(self)
            shared.append(listener)
        if siblings.is_worker():
            # A copy serves only as long as the twistd process that started it.
            reactor.callWhenRunning(stop_when_parent_leaves, reactor)
        else:
            password = config.one_time[1] if config.one_time else None
            workers = siblings.SiblingProcesses(
                config.workers - 1, config.arguments, password, reactor, shared
            )
            self.lifecycle.adopt_workers(workers)
            workers.setServiceParent(self)

    def setServiceParent(self, parent: Any) -> None:
        super().setServiceParent(parent)
        if self.text_log is not None:
            # twistd adds the service, then starts its log from this component if set.
            parent.setComponent(ILogObserver, self.text_log)

    def privilegedStartService(self) -> None:
        try:
            super().privilegedStartService()
        except ListenFailed as exc:
            if self.pidfile and os.path.exists(self.pidfile):
                os.unlink(self.pidfile)
            startup.fail(str(exc))

    def startService(self) -> None:
        for key in self.config.host_keys:
            log.info(
                "host key {algorithm} {fingerprint}",
                algorithm=key.get_name(),
                fingerprint=key.get_fingerprint(),
                event="host_key",
            )
        for warning in self.config.warnings:
            log.warn(warning)
        super().startService()
        self.reactor.callWhenRunning(self.lifecycle.signals.install)
        if not siblings.is_worker():
            startup.log_hints(startup.service_hints(self))

    def stopService(self) -> defer.Deferred[None]:
        # The listeners close first: nothing new is accepted while the rest drains.
        return self.lifecycle.stop(super().stopService())


def makeService(options: ServiceOptions) -> service.MultiService:
    """The SSH service described by parsed ``options`` (twistd's plugin entry point)."""
    config = options.config
    served = getattr(getattr(config.server, "config", None), "sftp_root", None)
    try:
        startup.keep_pidfile_out(options, served, state_directory())
    except usage.UsageError as exc:
        startup.fail(str(exc))
    if config.one_time is not None and not siblings.is_worker():
        user, password = config.one_time
        # Printed, not logged: a password has no place in a log file.
        print(f"spindlex_tw: one-time password for {user}: {password}", flush=True)
    spindle = SpindleService(config)
    parent = getattr(options, "parent", None)
    if parent is not None:
        spindle.pidfile = parent.get("pidfile") or None
    spindle.text_log, copies_log = for_twistd(options, config.text_log)
    siblings.log_copies(spindle, copies_log)
    return spindle
