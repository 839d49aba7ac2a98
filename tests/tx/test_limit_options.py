"""Every limit option of twistd spindlex lands in the setting that enforces it."""

from __future__ import annotations

from pathlib import Path

import pytest

from spindlex_tw.sftp.context import Limits
from spindlex_tw.twistd.service import ServiceOptions
from spindlex_tw.tx.settings import ServerSettings


def _parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> ServiceOptions:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    options = ServiceOptions()
    options.parseOptions(
        [
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--auth",
            "memory:a:b",
            "--sftp-root",
            str(tmp_path),
            *args,
        ]
    )
    return options


def test_defaults_are_the_library_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _parsed(tmp_path, monkeypatch).config
    library = ServerSettings()
    assert config.settings.max_connections_per_source == library.max_connections_per_source
    assert config.settings.max_startups == library.max_startups
    assert config.settings.max_startups_per_source == library.max_startups_per_source
    assert config.settings.channels.max_channels == library.channels.max_channels
    assert config.settings.max_requests_per_second == library.max_requests_per_second
    assert config.settings.max_requests_burst == library.max_requests_burst
    assert config.settings.max_forward_listeners == library.max_forward_listeners
    assert config.settings.forward_connect_timeout == library.forward_connect_timeout
    assert config.settings.hook_timeout == library.hook_timeout
    sftp = config.server.config.sftp_limits
    assert sftp.max_open_handles == Limits().max_open_handles
    assert sftp.max_outstanding_bytes == Limits().max_outstanding_bytes
    assert sftp.max_outstanding_requests == Limits().max_outstanding_requests


def test_each_option_sets_its_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _parsed(
        tmp_path,
        monkeypatch,
        "--max-connections-per-source=200",
        "--max-startups=5",
        "--max-startups-per-source=7",
        "--max-channels=3",
        "--max-request-rate=20",
        "--sftp-max-handles=9",
        "--sftp-max-inflight=512K",
        "--sftp-max-requests=16",
        "--max-forward-listeners=2",
        "--forward-connect-timeout=2.5",
        "--hook-timeout=5",
    ).config
    assert config.settings.max_forward_listeners == 2
    assert config.settings.forward_connect_timeout == 2.5
    assert config.settings.hook_timeout == 5.0
    assert config.settings.max_connections_per_source == 200
    assert config.settings.max_startups == (5, 100, 5)
    assert config.settings.max_startups_per_source == 7
    assert config.settings.channels.max_channels == 3
    assert (config.settings.max_requests_per_second, config.settings.max_requests_burst) == (
        20.0,
        100.0,
    )
    sftp = config.server.config.sftp_limits
    assert (sftp.max_open_handles, sftp.max_outstanding_bytes, sftp.max_outstanding_requests) == (
        9,
        512 * 1024,
        16,
    )
