"""Kerberos settings without a KDC: principal mapping rules, and gssapi stays optional."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from twisted.python import usage

from spindlex_tw.twistd.service import ServiceOptions
from spindlex_tw.tx.kerberos import (
    GssapiSettings,
    KerberosUnavailable,
    PrincipalMap,
    default_login,
)
from tests.support.harness import ROOT


def test_the_default_maps_one_part_principals_of_the_default_realm() -> None:
    assert default_login("alice@EXAMPLE.COM", "EXAMPLE.COM") == "alice"
    assert default_login("alice@OTHER.ORG", "EXAMPLE.COM") is None
    assert default_login("alice/admin@EXAMPLE.COM", "EXAMPLE.COM") is None
    assert default_login("alice", "EXAMPLE.COM") is None
    assert default_login("@EXAMPLE.COM", "EXAMPLE.COM") is None


def test_rules_come_before_the_default() -> None:
    rules = PrincipalMap(["ops/admin@EXAMPLE.COM=root", " *@PARTNER.ORG ", "bob@EXAMPLE.COM=rob"])
    assert rules("ops/admin@EXAMPLE.COM", "EXAMPLE.COM") == "root"
    assert rules("carol@PARTNER.ORG", "EXAMPLE.COM") == "carol"
    assert rules("x/y@PARTNER.ORG", "EXAMPLE.COM") is None
    assert rules("bob@EXAMPLE.COM", "EXAMPLE.COM") == "rob"
    assert rules("alice@EXAMPLE.COM", "EXAMPLE.COM") == "alice"
    assert rules("alice@ELSEWHERE", "EXAMPLE.COM") is None


@pytest.mark.parametrize("rule", ["alice", "alice=bob", "alice@R=", "*@", "*@R=x", "=x"])
def test_bad_rules_are_refused(rule: str) -> None:
    with pytest.raises(ValueError, match="PRINCIPAL=USER or"):
        PrincipalMap([rule])


def test_a_missing_keytab_is_named(tmp_path: Path) -> None:
    pytest.importorskip("gssapi", reason="gssapi not installed: pip install spindlex-tw[kerberos]")
    with pytest.raises(KerberosUnavailable, match=r"missing\.keytab: cannot be read"):
        GssapiSettings(keytab=str(tmp_path / "missing.keytab")).check()


def test_options_need_a_keytab_and_good_rules() -> None:
    with pytest.raises(usage.UsageError, match="--gssapi-principal-map needs --keytab"):
        ServiceOptions().parseOptions(["--gssapi-principal-map", "a@R=b"])
    with pytest.raises(usage.UsageError, match="--gssapi-principal-map expects"):
        ServiceOptions().parseOptions(
            ["--keytab", "/nonexistent", "--gssapi-principal-map", "junk"]
        )


def test_the_library_and_the_service_import_without_gssapi() -> None:
    # None in sys.modules makes "import gssapi" fail, as without the kerberos extra.
    code = (
        "import sys; sys.modules['gssapi'] = None\n"
        "import spindlex_tw, spindlex_tw.server.ssh_server, spindlex_tw.twistd.service\n"
        "from spindlex_tw.tx.kerberos import GssapiSettings, KerberosUnavailable\n"
        "try:\n"
        "    GssapiSettings(keytab='/etc/krb5.keytab').check()\n"
        "except KerberosUnavailable as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "the gssapi package is not installed: pip install 'spindlex-tw[kerberos]'" in (
        result.stdout
    )
