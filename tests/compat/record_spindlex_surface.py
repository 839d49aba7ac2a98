"""Record the public surface of spindlex 1.0.4 into spindlex_1_0_4_surface.json.

How the listing was made (once; the JSON is committed, the test never needs SpindleX)::

    python -m venv /tmp/spx && /tmp/spx/bin/pip install spindlex==1.0.4
    cd / && /tmp/spx/bin/python /work/main/tests/compat/record_spindlex_surface.py

Run it from outside SpindleX's package directory: its ``logging`` subpackage
shadows the standard library's when the current directory is inside it.
Only names, parameters, defaults and constant values are written, never code
or docstrings.
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
from pathlib import Path
from typing import Any

# The modules of SpindleX a server program imports from.
MODULES = [
    "spindlex",
    "spindlex.exceptions",
    "spindlex.server",
    "spindlex.server.ssh_server",
    "spindlex.server.sftp_server",
    "spindlex.protocol.constants",
    "spindlex.protocol.sftp_constants",
    "spindlex.crypto.pkey",
]

OUTPUT = Path(__file__).with_name("spindlex_1_0_4_surface.json")


def plain(value: Any) -> Any:
    """The value as JSON can hold it, or None when it is not a plain constant."""
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    if isinstance(value, list | tuple):
        items = [plain(v) for v in value]
        return items if all(i is not None for i in items) else None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return None


def signature(func: Any) -> list[list[Any]] | None:
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    params = []
    for p in sig.parameters.values():
        if p.name in ("self", "cls"):
            continue
        default = None if p.default is inspect.Parameter.empty else {"default": plain(p.default)}
        params.append([p.name, p.kind.name, default])
    return params


def describe_class(cls: type) -> dict[str, Any]:
    members: dict[str, Any] = {}
    for klass in cls.__mro__:
        if klass is object or not klass.__module__.startswith("spindlex"):
            continue
        for name, raw in vars(klass).items():
            if name in members or (name.startswith("_") and name != "__init__"):
                continue
            if isinstance(raw, property):
                members[name] = {"kind": "property"}
            elif isinstance(raw, classmethod | staticmethod):
                kind = "classmethod" if isinstance(raw, classmethod) else "staticmethod"
                members[name] = {"kind": kind, "params": signature(getattr(cls, name))}
            elif inspect.isfunction(raw):
                members[name] = {"kind": "method", "params": signature(raw)}
            elif plain(raw) is not None or raw is None:
                members[name] = {"kind": "constant", "value": plain(raw)}
    return {
        "kind": "class",
        "bases": [f"{b.__module__}.{b.__qualname__}" for b in cls.__mro__[1:-1]],
        "members": dict(sorted(members.items())),
    }


def describe_module(name: str) -> dict[str, Any]:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    names = exported if exported is not None else [n for n in vars(module) if not n.startswith("_")]
    listing: dict[str, Any] = {}
    for attr in names:
        value = getattr(module, attr)
        if inspect.isclass(value):
            if value.__module__.startswith("spindlex"):
                listing[attr] = {**describe_class(value), "defined_in": value.__module__}
        elif inspect.isfunction(value):
            if value.__module__.startswith("spindlex"):
                listing[attr] = {
                    "kind": "function",
                    "params": signature(value),
                    "defined_in": value.__module__,
                }
        elif not inspect.ismodule(value) and plain(value) is not None:
            listing[attr] = {"kind": "constant", "value": plain(value)}
    return {"all": exported, "names": dict(sorted(listing.items()))}


def main() -> None:
    spindlex = importlib.import_module("spindlex")
    surface = {
        "spindlex_version": spindlex.__version__,
        "made_by": "tests/compat/record_spindlex_surface.py (see its docstring)",
        "modules": {name: describe_module(name) for name in MODULES},
    }
    OUTPUT.write_text(json.dumps(surface, indent=1, sort_keys=True) + "\n")
    sys.stdout.write(f"wrote {OUTPUT}\n")


if __name__ == "__main__":
    main()
