"""Old import paths of modules that moved, kept working as thin re-exports.

Before the packages were split by product, the ``twistd spindlex`` modules and
the synchronous runtime lived in ``spindlex_tw.tx``, and the docs told users to
import some of them from there. ``spindlex_tw.tx`` itself may not import the
twistd product or ``server/`` (the layers point down only), so the old names
are answered here, by the top-level package, which sits above every layer.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types

#: old module path -> where it lives now
MOVED = {
    "spindlex_tw.tx.service": "spindlex_tw.twistd.service",
    "spindlex_tw.tx.default_app": "spindlex_tw.twistd.default_app",
    "spindlex_tw.tx.credentials": "spindlex_tw.twistd.credentials",
    "spindlex_tw.tx.authorized_keys": "spindlex_tw.twistd.authorized_keys",
    "spindlex_tw.tx.workers": "spindlex_tw.twistd.workers",
    "spindlex_tw.tx.manager": "spindlex_tw.server.manager",
}


class _Reexport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old path and fills a fresh module with the public names of the new one."""

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def exec_module(self, module: types.ModuleType) -> None:
        target = importlib.import_module(MOVED[module.__name__])
        names = getattr(target, "__all__", None) or [
            name for name in vars(target) if not name.startswith("__")
        ]
        for name in names:
            setattr(module, name, getattr(target, name))
        module.__doc__ = f"Moved to :mod:`{target.__name__}`; this path re-exports it."


def install() -> None:
    if not any(isinstance(finder, _Reexport) for finder in sys.meta_path):
        sys.meta_path.append(_Reexport())
