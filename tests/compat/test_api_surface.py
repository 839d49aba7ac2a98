"""spindlex_tw's public surface held against spindlex 1.0.4's, as recorded.

``spindlex_1_0_4_surface.json`` lists SpindleX's server-side modules (names,
parameters, defaults, constant values; see record_spindlex_surface.py for how
it was made).  Every name must be importable from the same path under
``spindlex_tw`` with the same parameters, defaults and values, unless it is
listed below with the reason it is left out or differs.  A new SpindleX name
or a drifting parameter fails here.
"""

from __future__ import annotations

import importlib
import inspect
import json
from pathlib import Path
from typing import Any

import pytest

SURFACE = json.loads(Path(__file__).with_name("spindlex_1_0_4_surface.json").read_text())
MODULES: dict[str, dict[str, Any]] = SURFACE["modules"]

_CLIENT = "client side of SpindleX; spindlex_tw is a server library"
_SPINDLEX_INTERNAL = "SpindleX's transport internals, not part of its server API"
_NOT_HERE = "describes something this server does not have or does differently"

# (module, name) -> why spindlex_tw has no such name.
NOT_PROVIDED: dict[tuple[str, str], str] = {
    **{
        ("spindlex", name): _CLIENT
        for name in (
            "AsyncPortForwardingManager",
            "AsyncSFTPClient",
            "AsyncSSHClient",
            "PortForwardingManager",
            "SFTPClient",
            "SSHClient",
        )
    },
    ("spindlex", "Transport"): "a connection is spindlex_tw.tx.protocol.SSHServerProtocol",
    ("spindlex", "configure_sanitizing_logging"): "spindlex_tw logs through twisted.logger "
    "and never logs secrets; there is nothing to sanitize",
    ("spindlex.crypto.pkey", "CryptoBackend"): "no pluggable crypto backend: cryptography",
    ("spindlex.crypto.pkey", "write_mpint"): _SPINDLEX_INTERNAL,
    **{
        ("spindlex.protocol.constants", name): _SPINDLEX_INTERNAL
        for name in (
            "ERROR_AUTH_FAILED",
            "ERROR_CHANNEL_FAILED",
            "ERROR_INVALID_MESSAGE",
            "ERROR_PROTOCOL_MISMATCH",
            "ERROR_UNSUPPORTED_ALGORITHM",
            "MAX_QUEUE_SIZE",
            "MAX_MESSAGE_SIZE",
            "create_version_string",
            "get_message_name",
            "is_supported_version",
            "parse_version_string",
            "validate_message_type",
        )
    },
    **{
        ("spindlex.protocol.constants", name): "GSSAPI authentication is not offered"
        for name in (
            "AUTH_GSSAPI_WITH_MIC",
            "MSG_USERAUTH_GSSAPI_ERROR",
            "MSG_USERAUTH_GSSAPI_ERRTOK",
            "MSG_USERAUTH_GSSAPI_EXCHANGE_COMPLETE",
            "MSG_USERAUTH_GSSAPI_MIC",
            "MSG_USERAUTH_GSSAPI_RESPONSE",
            "MSG_USERAUTH_GSSAPI_TOKEN",
        )
    },
    ("spindlex.protocol.constants", "AUTH_HOSTBASED"): "hostbased authentication is not offered",
    ("spindlex.protocol.constants", "AUTH_PARTIAL_SUCCESS"): "a partial success is the "
    "AUTH_PARTIAL code, not a string",
    ("spindlex.protocol.constants", "SSH_PROTOCOL_VERSION_1"): "1.99 clients are served as 2.0",
    ("spindlex.protocol.constants", "SUPPORTED_PROTOCOL_VERSIONS"): "1.99 is accepted too",
    ("spindlex.protocol.constants", "DEFAULT_WINDOW_SIZE"): _NOT_HERE
    + ": the channel window is 2 MiB, OpenSSH's",
    ("spindlex.protocol.constants", "CHANNEL_WINDOW_ADJUST_SIZE"): _NOT_HERE,
    ("spindlex.protocol.constants", "DEFAULT_BANNER_TIMEOUT"): _NOT_HERE
    + ": one login_grace covers the banner",
    ("spindlex.protocol.constants", "DEFAULT_CONNECT_TIMEOUT"): _CLIENT,
    ("spindlex.protocol.constants", "SFTP_MAX_PACKET_SIZE"): _NOT_HERE
    + ": SFTP packets may be 256 KiB",
    ("spindlex.protocol.sftp_constants", "SFTP_MAX_PACKET_SIZE"): _NOT_HERE
    + ": SFTP packets may be 256 KiB",
    ("spindlex.protocol.sftp_constants", "SFTP_MAX_READ_SIZE"): _NOT_HERE
    + ": reads may be 256 KiB",
    ("spindlex.protocol.sftp_constants", "SFTP_DEFAULT_BUFFER_SIZE"): _CLIENT,
    ("spindlex.server.sftp_server", "SFTP_MAX_READ_SIZE"): _NOT_HERE + ": reads may be 256 KiB",
}

# (module, class or name, member) -> why the member differs or is absent.
MEMBER_DIFFERS: dict[tuple[str, str, str], str] = {
    (module, key, "__init__"): "a key is a value made by generate() or a from_* class "
    "method, never an empty object to fill; there is no crypto_backend to pass"
    for module in ("spindlex.crypto.pkey", "spindlex.server.ssh_server")
    for key in ("PKey", "RSAKey", "Ed25519Key", "ECDSAKey")
}

# (class, method, parameter) -> why its default differs; generate()'s None means
# "the type's default", which test_generate_defaults_are_spindlex_s checks.
DEFAULT_DIFFERS: dict[tuple[str, str, str], str] = {
    (cls, "generate", param): "None: the key type's default, as SpindleX's"
    for cls in ("PKey", "RSAKey", "Ed25519Key", "ECDSAKey")
    for param in ("key_type", "bits")
}
DEFAULT_DIFFERS[("SFTPError", "__init__", "message")] = "optional: the code's standard text"
DEFAULT_DIFFERS[("SFTPHandle", "__init__", "file_obj")] = "required: a handle serves a file"

# Constants whose value differs on purpose.
VALUE_DIFFERS: dict[tuple[str, str], str] = {
    ("spindlex", "__version__"): "spindlex_tw's own version",
    ("spindlex.protocol.sftp_constants", "SFTP_STATUS_MESSAGES"): "OpenSSH's texts: "
    "code 2 reads 'No such file', as sftp-server says it",
}


def _ours(module: str) -> Any:
    return importlib.import_module("spindlex_tw" + module.removeprefix("spindlex"))


def _protocol_constant(name: str, value: Any) -> bool:
    # A module without __all__ lists what it imported; a constant that comes
    # from SpindleX's protocol modules is checked there, not again here.
    return any(
        MODULES[m]["names"].get(name, {}).get("value", object()) == value
        for m in ("spindlex.protocol.constants", "spindlex.protocol.sftp_constants")
    )


def _required(module: str) -> list[tuple[str, dict[str, Any]]]:
    listing = MODULES[module]
    names = []
    for name, entry in listing["names"].items():
        if (module, name) in NOT_PROVIDED:
            continue
        if listing["all"] is None:
            defined = entry.get("defined_in")
            if defined is not None and defined != module:
                continue
            imported = entry["kind"] == "constant" and _protocol_constant(name, entry["value"])
            if imported and module.startswith("spindlex.server"):
                continue
        names.append((name, entry))
    return names


CASES = [(module, name, entry) for module in MODULES for name, entry in _required(module)]


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _check_params(
    where: str, ours: Any, recorded: list[list[Any]], owner: str, member: str
) -> None:
    params = [p for p in inspect.signature(ours).parameters.values() if p.name != "self"]
    wanted = [r for r in recorded if r[1] not in ("VAR_POSITIONAL", "VAR_KEYWORD")]
    for index, (name, kind, default) in enumerate(wanted):
        assert index < len(params), f"{where}: parameter {name!r} missing"
        have = params[index]
        assert have.name == name, f"{where}: parameter {index} is {have.name!r}, not {name!r}"
        assert have.kind.name == kind, f"{where}: {name!r} is {have.kind.name}, not {kind}"
        if (owner, member, name) in DEFAULT_DIFFERS:
            continue
        if default is None:
            assert have.default is inspect.Parameter.empty, f"{where}: {name!r} has a default"
        else:
            assert have.default is not inspect.Parameter.empty, f"{where}: {name!r} is required"
            assert _plain(have.default) == default["default"], f"{where}: {name!r} default"
    for extra in params[len(wanted) :]:
        optional = extra.default is not inspect.Parameter.empty or extra.kind in (
            inspect.Parameter.VAR_POSITIONAL,
            inspect.Parameter.VAR_KEYWORD,
        )
        assert optional, f"{where}: extra parameter {extra.name!r} must be optional"


@pytest.mark.parametrize(("module", "name", "entry"), CASES, ids=[f"{m}:{n}" for m, n, _ in CASES])
def test_name_matches_spindlex(module: str, name: str, entry: dict[str, Any]) -> None:
    where = f"spindlex_tw{module.removeprefix('spindlex')}.{name}"
    ours = getattr(_ours(module), name, None)
    assert ours is not None, f"{where} is missing"
    if entry["kind"] == "constant":
        if (module, name) not in VALUE_DIFFERS:
            assert _plain(ours) == entry["value"], where
        return
    if entry["kind"] == "function":
        assert callable(ours), where
        _check_params(where, ours, entry["params"], name, name)
        return
    assert inspect.isclass(ours), where
    for base in entry["bases"]:
        if base.startswith("spindlex.exceptions."):
            ours_base = getattr(_ours("spindlex.exceptions"), base.rsplit(".", 1)[1])
            assert issubclass(ours, ours_base), f"{where} is no {base}"
    for member, spec in entry["members"].items():
        if (module, name, member) in MEMBER_DIFFERS:
            continue
        at = f"{where}.{member}"
        assert hasattr(ours, member), f"{at} is missing"
        raw = inspect.getattr_static(ours, member)
        if spec["kind"] == "property":
            assert isinstance(raw, property), f"{at} is no property"
        elif spec["kind"] == "constant":
            assert _plain(getattr(ours, member)) == spec["value"], at
        else:
            if spec["kind"] == "classmethod":
                assert isinstance(raw, classmethod), f"{at} is no classmethod"
            _check_params(at, getattr(ours, member), spec["params"], name, member)


def test_every_exception_is_importable_from_the_top_level() -> None:
    import spindlex_tw
    from spindlex_tw import exceptions

    for name in MODULES["spindlex.exceptions"]["names"]:
        assert getattr(spindlex_tw, name) is getattr(exceptions, name)


def test_listing_is_spindlex_1_0_4() -> None:
    assert SURFACE["spindlex_version"] == "1.0.4"
    assert len(CASES) > 150  # the listing was read, not silently empty
