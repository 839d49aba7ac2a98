"""What the adapter knows of the application it serves, without importing ``server/``.

The hook classes live above this layer. They mark the hooks whose answer is
only the SpindleX default with :func:`default_hook`, so the adapter (and the
twistd product composing an ``--app`` with its options) can tell a hook the
application wrote from one it inherited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])

_MARK = "_spindlex_default_hook"


def default_hook(func: _F) -> _F:
    """Mark ``func`` as the do-nothing default of a hook."""
    setattr(func, _MARK, True)
    return func


def writes_hook(app: object, name: str) -> bool:
    """Did ``app`` (its class, or what it was composed with) write hook ``name`` itself?"""
    method = getattr(app, name, None)
    return method is not None and not getattr(method, _MARK, False)
