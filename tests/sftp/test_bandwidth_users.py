"""Who gets which bandwidth limit: the options, a password file's overrides, one bucket per user."""

from __future__ import annotations

from pathlib import Path

import pytest

from spindlex_tw.twistd.credentials import CredentialsError, parse_user_options
from spindlex_tw.twistd.service import Options
from spindlex_tw.twistd.users import UserHomes, UserPolicy


def _homes(tmp_path: Path, policy: UserPolicy, lines: bytes) -> UserHomes:
    settings = parse_user_options(lines, "passwd")
    return UserHomes(policy, str(tmp_path), False, lambda user: settings.get(user, {}))


def test_sessions_of_one_user_share_one_bucket_per_direction(tmp_path: Path) -> None:
    homes = _homes(tmp_path, UserPolicy(upload_rate=1 << 20, download_rate=2 << 20), b"")
    first, second, other = homes.account("alice"), homes.account("alice"), homes.account("bob")
    assert first is not None and second is not None and other is not None
    assert first.bandwidth is second.bandwidth
    assert other.bandwidth is not first.bandwidth
    assert first.bandwidth is not None
    assert first.bandwidth.upload is not None and first.bandwidth.upload.rate == 1 << 20
    assert first.bandwidth.download is not None and first.bandwidth.download.rate == 2 << 20


def test_password_file_overrides_and_zero_means_none(tmp_path: Path) -> None:
    lines = b"alice:$2b$12$x:upload-rate=500K\nbob:$2b$12$x:upload-rate=0,download-rate=0\n"
    homes = _homes(tmp_path, UserPolicy(upload_rate=1 << 20), lines)
    alice, bob = homes.account("alice"), homes.account("bob")
    assert alice is not None and alice.bandwidth is not None
    assert alice.bandwidth.upload is not None and alice.bandwidth.upload.rate == 500 << 10
    assert alice.bandwidth.download is None
    assert bob is not None and bob.bandwidth is None


def test_unlimited_by_default(tmp_path: Path) -> None:
    account = _homes(tmp_path, UserPolicy(), b"").account("alice")
    assert account is not None and account.bandwidth is None


def test_bad_rates_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(CredentialsError, match="upload-rate"):
        parse_user_options(b"alice:$2b$12$x:upload-rate=fast\n", "passwd")
    for value in ("0", "1Q"):
        with pytest.raises(SystemExit) as exited:
            Options().parseOptions(["--download-rate", value])
        assert exited.value.code == 2
        assert "--download-rate" in capsys.readouterr().err
