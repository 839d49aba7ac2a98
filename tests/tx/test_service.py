"""twistd spindlex options: validation, the embedded default, --app composition, makeService."""

from __future__ import annotations

import getpass
import os
import stat
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from twisted.application.service import IService
from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage

from spindlex_tw.crypto.pkey import Ed25519Key, RSAKey
from spindlex_tw.protocol.constants import AUTH_FAILED, AUTH_SUCCESSFUL
from spindlex_tw.server.ssh_server import SSHServer
from spindlex_tw.twistd import state
from spindlex_tw.twistd.composition import build_server
from spindlex_tw.twistd.default_app import DefaultServer, ServerConfig
from spindlex_tw.twistd.lifecycle import CLOSE_GRACE
from spindlex_tw.twistd.service import (
    Options,
    ServiceConfig,
    ServiceOptions,
    SpindleService,
    makeService,
)
from spindlex_tw.tx.settings import ServerSettings
from tests.support.twistd import declared_options, documented_options


class PasswordOnlyApp(SSHServer):
    """An --app that decides passwords itself and leaves everything else to the options."""

    def check_auth_password(self, username: str, password: str) -> int:
        return AUTH_SUCCESSFUL if password == "from-the-app" else AUTH_FAILED


class NeedsArguments(SSHServer):
    def __init__(self, required: str) -> None:
        super().__init__()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return home


def parse(*args: str) -> ServiceOptions:
    options = ServiceOptions()
    options.parseOptions(list(args))
    return options


def test_embedded_default(home: Path) -> None:
    config = parse().config
    assert [description for description, _ in config.endpoints] == ["tcp:2222:interface=127.0.0.1"]
    key_path = home / ".local" / "state" / "spindlex_tw" / "host_ed25519"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_path.parent.stat().st_mode) == 0o700
    [key] = config.host_keys
    assert key == Ed25519Key.from_private_key_file(key_path)
    server = config.server
    assert type(server) is DefaultServer
    assert server.config.sftp_root == os.getcwd()
    assert server.config.authorized_keys is not None
    assert server.config.authorized_keys.path == str(home / ".ssh" / "authorized_keys")
    assert server.config.exec_settings is None
    assert config.one_time is not None
    user, password = config.one_time
    assert user == getpass.getuser() and len(password) >= 16
    assert server.config.passwords.check(user, password)
    assert server.get_allowed_auths(user) == ["publickey", "password", "keyboard-interactive"]
    # Started again: the same key, and a new one-time password.
    again = parse().config
    assert again.host_keys == [key]
    assert again.one_time is not None and again.one_time[1] != password


def test_xdg_state_home_is_honoured(home: Path, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    parse()
    assert (tmp_path / "state" / "spindlex_tw" / "host_ed25519").exists()
    assert not (home / ".local").exists()


def test_explicit_options(home: Path, tmp_path: Path) -> None:
    keys = [Ed25519Key.generate(), RSAKey.generate(bits=2048)]
    paths = []
    for number, key in enumerate(keys):
        path = tmp_path / f"key{number}"
        key.save_to_file(path)
        paths.append(str(path))
    passwords = tmp_path / "passwd"
    passwords.write_text(f"bob:{bcrypt.hashpw(b'pw', bcrypt.gensalt(4)).decode()}\n")
    banner = tmp_path / "banner"
    banner.write_text("Authorized use only\n")
    root = tmp_path / "root"
    root.mkdir()
    config = parse(
        "--listen", "tcp:0:interface=127.0.0.1",
        "--listen", f"unix:{tmp_path / 'sock'}",
        "--host-key", paths[0],
        "--host-key", paths[1],
        "--auth", "memory:alice:secret",
        "--auth", f"file:{passwords}",
        "--sftp-root", str(root),
        "--read-only",
        "--exec",
        "--banner", str(banner),
        "--max-connections", "7",
        "--login-grace", "2.5",
        "--max-auth-tries", "3",
    ).config  # fmt: skip
    assert len(config.endpoints) == 2
    assert config.host_keys == keys
    assert config.one_time is None
    server = config.server
    assert server.config.authorized_keys is None
    assert server.get_allowed_auths("x") == ["password", "keyboard-interactive"]
    assert server.config.passwords.check("alice", "secret")
    assert server.config.passwords.check("bob", "pw")
    assert server.config.sftp_root == str(root)
    assert server.config.read_only
    assert server.get_banner() == "Authorized use only\n"
    assert server.config.exec_settings is not None
    assert server.config.exec_settings.cwd == str(root)
    assert (config.settings.max_connections, config.settings.login_grace) == (7, 2.5)
    assert config.settings.auth.max_failures == 3
    assert config.warnings == ["--read-only limits SFTP only: --exec commands can still write"]


def test_app_overrides_win_and_options_fill_in(home: Path) -> None:
    config = parse("--app", f"{__name__}:PasswordOnlyApp", "--exec").config
    server = config.server
    # The app is an instance of exactly its own class; the options stand beside it.
    assert type(server.app) is PasswordOnlyApp and isinstance(server.policy, DefaultServer)
    # The app checks passwords itself: no one-time password is made for it...
    assert config.one_time is None
    assert server.check_auth_password("anyone", "from-the-app") == AUTH_SUCCESSFUL
    # ...but keys, SFTP and --exec come from the options.
    assert server.config.authorized_keys is not None
    assert server.config.exec_settings is not None
    assert server.get_allowed_auths("x") == ["publickey", "password", "keyboard-interactive"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus"], "option --bogus not recognized"),
        (["--listen", "tcp:notaport"], "--listen 'tcp:notaport' is not a server endpoint"),
        (["--listen", "nosuchtype:1"], "--listen 'nosuchtype:1' is not a server endpoint"),
        (["--host-key", "/nonexistent/key"], "--host-key: cannot load key /nonexistent/key"),
        (["--app", "nocolon"], "--app expects module:Class"),
        (["--app", "no.such.module:X"], "cannot import no.such.module"),
        (["--app", "os:getcwd"], "getcwd is not an SSHServer subclass"),
        (["--app", f"{__name__}:NeedsArguments"], "cannot create it"),
        (["--auth", "memory:alice"], "memory:USER:PASSWORD"),
        (["--max-connections", "0"], "--max-connections expects a number of at least 1"),
        (["--max-auth-tries", "many"], "--max-auth-tries expects a number"),
        (["--login-grace", "nan"], "--login-grace expects a number"),
        (["--sftp-root", "/nonexistent"], "--sftp-root /nonexistent is not a directory"),
        (["--banner", "/nonexistent"], "--banner /nonexistent"),
        (["--authorized-keys", "/"], "--authorized-keys: cannot read /: is a directory"),
        (["--rekey-limit", "lots"], "--rekey-limit: 'lots' is not a size"),
        (["--rekey-limit", "1M:soon"], "--rekey-limit: 'soon' is not a time"),
        (["--rekey-limit", "1M:"], "--rekey-limit: '' is not a time"),
        (["--rekey-limit", "8"], "--rekey-limit: '8' is below 16 bytes"),
        (["--rekey-limit", "1G:0m"], "--rekey-limit: '0m' is not a time after which"),
    ],
)
def test_bad_values_are_one_line_errors(home: Path, args: list[str], message: str) -> None:
    with pytest.raises(usage.UsageError) as caught:
        parse(*args)
    text = str(caught.value)
    assert message in text
    assert "\n" not in text


@pytest.mark.parametrize(
    ("value", "volume", "seconds"),
    [
        ("default", 1 << 30, 3600.0),
        ("1M", 1 << 20, 3600.0),
        ("1G", 1 << 30, 3600.0),
        ("none", 1 << 30, 0.0),
        ("default:none", 1 << 30, 0.0),
        ("1G:1h", 1 << 30, 3600.0),
        ("512K:30m", 512 << 10, 1800.0),
        ("2g:1h30m", 2 << 30, 5400.0),
        ("100000:90", 100000, 90.0),
    ],
)
def test_rekey_limit_reads_openssh_forms(
    home: Path, value: str, volume: int, seconds: float
) -> None:
    settings = parse("--rekey-limit", value).config.settings
    assert (settings.transport.rekey_bytes, settings.rekey_seconds) == (volume, seconds)


def test_plain_text_password_file(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_text("alice:secret\n")
    with pytest.raises(usage.UsageError, match="plain text is refused"):
        parse("--auth", f"file:{path}")


def test_twistd_options_exit_2_with_one_line(home: Path, capsys: Any) -> None:
    with pytest.raises(SystemExit) as caught:
        Options().parseOptions(["--max-connections", "-5"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("twistd spindlex: error: --max-connections")


def test_help_documents_every_option(capsys: Any) -> None:
    with pytest.raises(SystemExit) as caught:
        Options().parseOptions(["--help"])
    assert caught.value.code == 0
    text = capsys.readouterr().out
    declared = declared_options()
    assert "workers" in declared
    described = documented_options(text)
    undocumented = {name for name in declared if len(described.get(name, "")) < 10}
    assert not undocumented, text


def test_make_service(home: Path, capsys: Any) -> None:
    options = parse("--listen", "tcp:0:interface=127.0.0.1", "--read-only")
    service = makeService(options)
    assert IService.providedBy(service)
    assert len(list(service)) == 1
    out = capsys.readouterr().out
    assert f"one-time password for {getpass.getuser()}: " in out
    assert options.config.server.config.read_only


def test_unusable_default_host_key(home: Path) -> None:
    key_path = home / ".local" / "state" / "spindlex_tw" / "host_ed25519"
    key_path.parent.mkdir(parents=True)
    key_path.write_text("garbage\n")
    with pytest.raises(usage.UsageError, match="default host key: cannot load key"):
        parse()


def test_default_host_key_made_by_another_server_meanwhile_is_kept(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two servers starting at once on one state directory serve one key.

    Another server's key appears after this one looked for it: this one
    must serve that key, not replace it with its own.
    """
    key_path = home / ".local" / "state" / "spindlex_tw" / "host_ed25519"
    key_path.parent.mkdir(parents=True)
    theirs = Ed25519Key.generate()
    theirs.save_to_file(key_path)
    monkeypatch.setattr(state.os.path, "exists", lambda path: False)
    assert state.default_host_key() == theirs
    assert Ed25519Key.from_private_key_file(key_path) == theirs
    assert sorted(p.name for p in key_path.parent.iterdir()) == ["host_ed25519"]


class _SlowSession:
    """Stands in for an SFTP session whose last writes are still on their way to disk."""

    def __init__(self) -> None:
        self.finished: defer.Deferred[None] = defer.Deferred()
        self.protocol = self

    def when_finished(self) -> defer.Deferred[None]:
        return self.finished


def _service() -> tuple[SpindleService, MemoryReactorClock, _SlowSession]:
    reactor = MemoryReactorClock()
    server = build_server(None, ServerConfig())
    session = _SlowSession()
    server.sftp_sessions.add(session)  # type: ignore[arg-type]
    config = ServiceConfig([], [Ed25519Key.generate()], server, ServerSettings())
    service = SpindleService(config, reactor)
    service.startService()
    return service, reactor, session


def test_stop_waits_for_sftp_writes_in_flight() -> None:
    service, reactor, session = _service()
    stopped = service.stopService()
    reactor.advance(CLOSE_GRACE / 2)
    assert not stopped.called
    session.finished.callback(None)
    assert stopped.called


def test_stop_waits_a_bounded_time() -> None:
    service, reactor, _ = _service()
    stopped = service.stopService()
    reactor.advance(CLOSE_GRACE + 1)
    assert stopped.called
