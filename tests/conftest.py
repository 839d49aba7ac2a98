"""Shared fixtures: a server process per test and isolated OpenSSH clients."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from tests.support.harness import OpenSSH, ServerProcess

# Every property test takes its example count from the loaded profile (no
# test pins its own).  The default run keeps them short; "fuzz" is the long
# run documented in docs/security.md.  At the fuzz count the slowest test
# needs a few minutes on the 2-core test machine, so the fuzz profile raises
# the per-test timeout far above that: a slow machine fails on a bug, not on
# the clock.
settings.register_profile("default", max_examples=200, deadline=None)
settings.register_profile(
    "fuzz", max_examples=50_000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile("default")
FUZZ_TIMEOUT = 3600


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if settings.get_current_profile_name() != "fuzz":
        return
    for item in items:
        if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
            item.add_marker(pytest.mark.timeout(FUZZ_TIMEOUT))


for tool in ("ssh", "sshpass", "ssh-keygen"):
    if shutil.which(tool) is None and os.environ.get("CI"):
        raise RuntimeError(
            f"{tool} is required for the interop tests (apt-get install openssh-client sshpass)"
        )


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def start(**kwargs: Any) -> ServerProcess:
        server = ServerProcess(tmp_path, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An empty directory for a test's SFTP server to serve."""
    jail = tmp_path / "root"
    jail.mkdir()
    return jail


@pytest.fixture
def server(
    start_server: Callable[..., ServerProcess], client_keys: dict[str, Path]
) -> ServerProcess:
    return start_server(env={"SPINDLEX_TEST_AUTHORIZED": str(client_keys["authorized"])})


@pytest.fixture(scope="session")
def host_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Server host keys of every type, made by ssh-keygen."""
    directory = tmp_path_factory.mktemp("host-keys")
    keys: dict[str, Path] = {}
    for name, args in {
        "ed25519": "-t ed25519",
        "rsa": "-t rsa -b 2048",
        "ecdsa256": "-t ecdsa -b 256",
        "ecdsa384": "-t ecdsa -b 384",
        "ecdsa521": "-t ecdsa -b 521",
    }.items():
        path = directory / f"host_{name}"
        os.system(f"ssh-keygen -q -N '' {args} -f {path} >/dev/null")
        keys[name] = path
    return keys


@pytest.fixture
def openssh(tmp_path: Path, server: ServerProcess) -> OpenSSH:
    return OpenSSH(tmp_path, server.port)


@pytest.fixture(scope="session")
def client_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Client key pairs made by ssh-keygen, one per type, plus an authorized_keys file."""
    directory = tmp_path_factory.mktemp("client-keys")
    keys: dict[str, Path] = {}
    for name, args in {
        "ed25519": ["-t", "ed25519"],
        "rsa": ["-t", "rsa", "-b", "2048"],
        "ecdsa": ["-t", "ecdsa", "-b", "256"],
        "ecdsa384": ["-t", "ecdsa", "-b", "384"],
        "ecdsa521": ["-t", "ecdsa", "-b", "521"],
    }.items():
        path = directory / f"id_{name}"
        os.system(f"ssh-keygen -q -N '' {' '.join(args)} -f {path} >/dev/null")
        keys[name] = path
    authorized = directory / "authorized_keys"
    authorized.write_text("".join((p.with_suffix(".pub")).read_text() for p in keys.values()))
    keys["authorized"] = authorized
    return keys
