"""authorized_keys environment= and the agent/X11 flags, as sshd 9.2 reads them."""

from __future__ import annotations

import pytest

from spindlex_tw.crypto.pkey import Ed25519Key
from spindlex_tw.twistd.authorized_keys import OptionError, parse_line

KEY = Ed25519Key.generate().get_public_line()


def test_environment_first_of_each_name_wins() -> None:
    entry = parse_line(f'environment="A=1",environment="B=two words",environment="A=again" {KEY}')
    assert entry is not None
    assert entry.options.environment == (("A", "1"), ("B", "two words"))


def test_restrict_keeps_the_environment_and_clears_agent_and_x11() -> None:
    entry = parse_line(f'restrict,environment="A=1" {KEY}')
    assert entry is not None
    options = entry.options
    assert options.environment == (("A", "1"),)
    assert not options.agent_forwarding and not options.x11_forwarding
    again = parse_line(f"restrict,agent-forwarding,x11-forwarding {KEY}")
    assert again is not None and again.options.agent_forwarding and again.options.x11_forwarding


@pytest.mark.parametrize("value", ["NOEQUALS", "=value", "BAD-NAME=x", "SP ACE=x"])
def test_invalid_environment_refuses_the_key(value: str) -> None:
    with pytest.raises(OptionError, match="invalid environment string"):
        parse_line(f'environment="{value}" {KEY}')
