"""authorized_keys parsing: options, pattern lists, refusal of what cannot be enforced."""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.logger import globalLogPublisher

from spindlex_tw.crypto.pkey import Ed25519Key, PKey
from spindlex_tw.twistd.authorized_keys import (
    AuthorizedKeysFile,
    KeyOptions,
    OptionError,
    match_address_patterns,
    parse_authorized_keys,
    parse_line,
)


@pytest.fixture(scope="module")
def keys() -> list[PKey]:
    return [Ed25519Key.generate().get_public_key() for _ in range(3)]


@pytest.fixture
def warnings_logged() -> Iterator[list[str]]:
    seen: list[str] = []

    def observer(event: dict[str, Any]) -> None:
        if event.get("log_namespace") == "spindlex_tw.authorized_keys":
            seen.append(event["log_format"].format(**event))

    globalLogPublisher.addObserver(observer)
    yield seen
    globalLogPublisher.removeObserver(observer)


def test_plain_line_has_default_options(keys: list[PKey]) -> None:
    entry = parse_line(keys[0].get_public_line() + " laptop")
    assert entry is not None
    assert entry.key == keys[0]
    assert entry.options == KeyOptions()
    assert parse_line("   ") is None and parse_line("# comment") is None


def test_options_are_applied_left_to_right(keys: list[PKey]) -> None:
    line = keys[0].get_public_line()
    restricted = parse_line(f"restrict {line}")
    assert restricted is not None
    assert not restricted.options.pty and not restricted.options.port_forwarding
    again = parse_line(f"restrict,pty {line}")
    assert again is not None and again.options.pty and not again.options.port_forwarding
    no_pty = parse_line(f"no-pty,NO-PORT-FORWARDING,no-agent-forwarding,no-X11-forwarding {line}")
    assert no_pty is not None and not no_pty.options.pty and not no_pty.options.port_forwarding


def test_quoted_values(keys: list[PKey]) -> None:
    line = keys[0].get_public_line()
    entry = parse_line(
        f'command="echo \\"a, b\\" && date",from="10.0.0.0/8,!10.1.2.3",'
        f'permitopen="db:5432",permitopen="[::1]:*",permitlisten="8080" {line} comment'
    )
    assert entry is not None
    options = entry.options
    assert options.command == 'echo "a, b" && date'
    assert options.from_patterns == ("10.0.0.0/8", "!10.1.2.3")
    assert options.permit_open == (("db", "5432"), ("::1", "*"))
    assert options.allows_open("DB", 5432) and options.allows_open("::1", 22)
    assert not options.allows_open("db", 5433) and not options.allows_open("other", 5432)
    assert options.allows_listen("localhost", 8080) and not options.allows_listen("localhost", 80)


@pytest.mark.parametrize(
    "options",
    [
        'tunnel="0"',
        'principals="a",principals="b"',
        'from="a",from="b"',
        'command="a",command="b"',
        'permitopen="nocolon"',
        'expiry-time="2020"',
        'no-pty=""',
        "pty,,restrict",
        'command="unterminated',
    ],
)
def test_what_cannot_be_enforced_refuses_the_key(
    keys: list[PKey], options: str, warnings_logged: list[str]
) -> None:
    with pytest.raises(OptionError):
        parse_line(f"{options} {keys[0].get_public_line()}")
    text = f"{keys[1].get_public_line()}\n{options} {keys[0].get_public_line()}\n"
    entries = parse_authorized_keys(text, "/home/u/.ssh/authorized_keys")
    assert [e.key for e in entries] == [keys[1]]
    assert any("authorized_keys line 2" in w and "key ignored" in w for w in warnings_logged)


@pytest.mark.parametrize(
    ("address", "patterns", "admitted"),
    [
        ("127.0.0.1", ("127.0.0.1",), True),
        ("127.0.0.1", ("127.0.0.*",), True),
        ("127.0.0.1", ("127.0.0.?",), True),
        ("127.0.0.10", ("127.0.0.?",), False),
        ("192.0.2.7", ("192.0.2.0/24",), True),
        ("192.0.2.7", ("192.0.2.0/24", "!192.0.2.7"), False),
        ("192.0.2.8", ("!192.0.2.7", "192.0.2.0/24"), True),
        ("192.0.2.8", ("!192.0.2.7",), False),
        ("::ffff:10.1.1.1", ("10.0.0.0/8",), True),
        ("2001:db8::1", ("2001:db8::/32",), True),
        ("2001:db8::1", ("10.0.0.0/8", "*.example.com"), False),
        ("not-an-ip", ("*",), False),
    ],
)
def test_from_patterns(address: str, patterns: tuple[str, ...], admitted: bool) -> None:
    assert match_address_patterns(address, patterns) is admitted


def test_find_skips_lines_whose_from_refuses(tmp_path: Path, keys: list[PKey]) -> None:
    path = tmp_path / "authorized_keys"
    line = keys[0].get_public_line()
    path.write_text(f'from="10.0.0.1",command="first" {line}\nno-pty {line}\n')
    store = AuthorizedKeysFile(str(path))
    from_ten = store.find(keys[0], "10.0.0.1")
    assert from_ten is not None and from_ten.command == "first"
    elsewhere = store.find(keys[0], "127.0.0.1")
    assert elsewhere is not None and elsewhere.command is None and not elsewhere.pty
    assert store.find(keys[1], "10.0.0.1") is None


def test_expiry_time(tmp_path: Path, keys: list[PKey]) -> None:
    path = tmp_path / "authorized_keys"
    path.write_text(f'expiry-time="20300101Z" {keys[0].get_public_line()}\n')
    store = AuthorizedKeysFile(str(path))
    before = datetime.datetime(2029, 12, 31, tzinfo=datetime.UTC)
    after = datetime.datetime(2030, 1, 1, 0, 0, 1, tzinfo=datetime.UTC)
    assert store.find(keys[0], "127.0.0.1", before) is not None
    assert store.find(keys[0], "127.0.0.1", after) is None


def test_file_is_read_again_when_it_changes(tmp_path: Path, keys: list[PKey]) -> None:
    path = tmp_path / "authorized_keys"
    store = AuthorizedKeysFile(str(path))
    assert store.find(keys[0], "127.0.0.1") is None  # missing: nothing authorized
    path.write_text(keys[0].get_public_line() + "\n")
    assert store.find(keys[0], "127.0.0.1") == KeyOptions()
    path.write_text(keys[1].get_public_line() + "\n")
    os.utime(path, ns=(1, 1))
    assert store.find(keys[0], "127.0.0.1") is None
    assert store.find(keys[1], "127.0.0.1") == KeyOptions()


def test_unreadable_file_is_reported(tmp_path: Path) -> None:
    directory = tmp_path / "dir"
    directory.mkdir()
    with pytest.raises(OptionError, match=r"cannot read .*dir: is a directory"):
        AuthorizedKeysFile(str(directory)).check_readable()
    AuthorizedKeysFile(str(tmp_path / "missing")).check_readable()
