"""Runs a spindlex_tw server for interop tests, in its own process with its own reactor.

    python -m tests.support.server_main --app tests.support.apps:TestServer \
        [--host-key FILE ...] [--settings JSON]

Prints ``PORT <n>`` once listening on 127.0.0.1 (port 0 picks a free one).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from dataclasses import replace
from typing import Any

from twisted.internet import endpoints, reactor
from twisted.logger import globalLogBeginner, textFileLogObserver

from spindlex_tw.core.connection import ChannelLimits
from spindlex_tw.core.transport import TransportConfig
from spindlex_tw.core.userauth import AuthLimits
from spindlex_tw.crypto.pkey import Ed25519Key, PKey
from spindlex_tw.tx.factory import SSHServerFactory
from spindlex_tw.tx.settings import ServerSettings


def build_settings(spec: dict[str, Any]) -> ServerSettings:
    settings = ServerSettings()
    for section, cls_default in (
        ("transport", settings.transport),
        ("auth", settings.auth),
        ("channels", settings.channels),
    ):
        if section in spec:
            values = spec.pop(section)
            if isinstance(cls_default, TransportConfig):
                for name, value in values.items():
                    setattr(cls_default, name, value)
            elif isinstance(cls_default, AuthLimits | ChannelLimits):
                setattr(settings, section, replace(cls_default, **values))
    for name, value in spec.items():
        setattr(settings, name, value)
    return settings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--app", default="tests.support.apps:TestServer")
    parser.add_argument("--host-key", action="append", default=[])
    parser.add_argument("--settings", default="{}")
    parser.add_argument("--listen", default="tcp:0:interface=127.0.0.1")
    args = parser.parse_args()
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)], redirectStandardIO=False)
    module, _, name = args.app.partition(":")
    app = getattr(importlib.import_module(module), name)()
    keys = [PKey.from_private_key_file(path) for path in args.host_key] or [Ed25519Key.generate()]
    factory = SSHServerFactory(app, keys, build_settings(json.loads(args.settings)))

    def listening(port: Any) -> None:
        print(f"PORT {port.getHost().port}", flush=True)

    def failed(failure: Any) -> None:
        print(f"ERROR {failure.getErrorMessage()}", flush=True)
        reactor.stop()

    endpoints.serverFromString(reactor, args.listen).listen(factory).addCallbacks(listening, failed)
    reactor.run()


if __name__ == "__main__":
    main()
