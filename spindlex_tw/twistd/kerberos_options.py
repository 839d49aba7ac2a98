"""``twistd spindlex --keytab FILE``: Kerberos logins (gssapi-with-mic), see docs/twistd.md.

The options become a :class:`~spindlex_tw.tx.kerberos.GssapiSettings` on the
server's settings. The keytab is tried at start-up, so a missing ``gssapi``
package or an unreadable keytab is one line and exit status 2, not a
refusal at each login.
"""

from __future__ import annotations

from twisted.python import usage

from spindlex_tw.tx.kerberos import GssapiSettings, KerberosUnavailable, PrincipalMap
from spindlex_tw.tx.settings import ServerSettings

#: twistd's optParameters rows: name, short, default, help.
OPTIONS: list[list[str | None]] = [
    [
        "keytab",
        None,
        None,
        "FILE: offer Kerberos logins (gssapi-with-mic) with the host keys in this keytab; "
        "user@DEFAULT_REALM logs in as user. Needs pip install 'spindlex-tw[kerberos]'.",
    ],
    [
        "gssapi-host",
        None,
        None,
        "NAME: accept tickets for host/NAME only [default: for any principal in the keytab].",
    ],
    [
        "gssapi-principal-map",
        None,
        None,
        "RULES: comma-separated PRINCIPAL=USER (that principal logs in as USER) or *@REALM "
        "(REALM's one-part principals log in as their name), tried before the default.",
    ],
]


def apply(options: usage.Options, settings: ServerSettings) -> None:
    """Set ``settings.gssapi`` from the options; :class:`usage.UsageError` if they cannot work."""
    keytab = options["keytab"]
    if keytab is None:
        for name in ("gssapi-host", "gssapi-principal-map"):
            if options[name] is not None:
                raise usage.UsageError(f"--{name} needs --keytab")
        return
    rules = [rule for rule in (options["gssapi-principal-map"] or "").split(",") if rule.strip()]
    try:
        principal_map = PrincipalMap(rules)
    except ValueError as exc:
        raise usage.UsageError(f"--gssapi-principal-map {exc}") from exc
    gssapi = GssapiSettings(
        keytab=keytab, host=options["gssapi-host"], map_principal=principal_map
    )
    try:
        gssapi.check()
    except KerberosUnavailable as exc:
        raise usage.UsageError(f"--keytab: {exc}") from exc
    settings.gssapi = gssapi
