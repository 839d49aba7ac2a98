"""ssh-audit finds nothing in our defaults that it does not also find in OpenSSH's sshd."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.harness import ServerProcess

# What ssh-audit 3.x reports (warn/fail) for OpenSSH 9.2 sshd's own default
# algorithms, measured side by side on this machine. Our defaults may only
# draw notes from this list.
SSHD_DEFAULT_NOTES = {
    "does not provide protection against post-quantum attacks",
    "using elliptic curves that are suspected as being backdoored by the U.S. National "
    "Security Agency",
    "2048-bit modulus only provides 112-bits of symmetric strength",
    "using encrypt-and-MAC mode",
}
# sshd gets this one too: it says strict KEX is supported, and that peers
# without it could still be attacked through chacha20-poly1305.
STRICT_KEX_NOTE = "properly supports the strict key exchange method"


def _audit(port: int) -> dict[str, object]:
    exe = shutil.which("ssh-audit") or str(Path(sys.executable).parent / "ssh-audit")
    result = subprocess.run(
        [exe, "-j", "--skip-rate-test", "-p", str(port), "127.0.0.1"],
        capture_output=True,
        timeout=120,
    )
    return json.loads(result.stdout)


def test_ssh_audit_defaults(server: ServerProcess) -> None:
    report = _audit(server.port)
    assert report["cves"] == []
    flagged = {
        (section, entry["algorithm"], note)
        for section in ("kex", "key", "enc", "mac")
        for entry in report[section]  # type: ignore[attr-defined]
        for level in ("warn", "fail")
        for note in entry.get("notes", {}).get(level, [])
    }
    unexpected = {item for item in flagged if item[2] not in SSHD_DEFAULT_NOTES}
    assert unexpected == set()
    for note in report["additional_notes"]:  # type: ignore[attr-defined]
        if "CVE-2023-48795" in note:
            assert STRICT_KEX_NOTE in note
    kex = [entry["algorithm"] for entry in report["kex"]]  # type: ignore[attr-defined]
    assert kex[0] == "mlkem768x25519-sha256"
    assert "kex-strict-s-v00@openssh.com" in kex
