"""``twistd spindlex``'s service built from its options, for a test.

The test's listening address, host key, password and client key are added
to the caller's arguments, so the service is the product's own (the same
``ServiceOptions`` and ``SpindleService`` twistd runs) with known secrets.
"""

from __future__ import annotations

from collections.abc import Sequence

from spindlex_tw.testing.credentials import HOST, Credentials
from spindlex_tw.twistd.service import ServiceOptions, SpindleService


def options_arguments(arguments: Sequence[str], credentials: Credentials) -> list[str]:
    """``arguments`` with the test's address, host key, password and authorized_keys."""
    folder = credentials.directory
    host_key = folder / "host_ed25519"
    credentials.host_key.save_to_file(host_key)
    authorized = folder / "authorized_keys"
    authorized.write_text(credentials.client_public_line + "\n")
    return [
        "--listen",
        f"tcp:0:interface={HOST}",
        "--host-key",
        str(host_key),
        "--auth",
        f"memory:{credentials.username}:{credentials.password}",
        "--authorized-keys",
        str(authorized),
        *arguments,
    ]


def options_service(
    arguments: Sequence[str], credentials: Credentials
) -> tuple[SpindleService, int]:
    """The started service and its port; its ``stopService()`` is the clean stop."""
    options = ServiceOptions()
    options.parseOptions(options_arguments(arguments, credentials))
    service = SpindleService(options.config)
    service.privilegedStartService()
    service.startService()
    # The SSH listener is the child serving the service's factory (--metrics adds another).
    ssh = [child for child in service if getattr(child, "factory", None) is service.factory]
    return service, int(ssh[0].port.getHost().port)
