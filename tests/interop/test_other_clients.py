"""The other SSH clients Debian packages, against our server: PuTTY, curl, rclone.

Each transfers a file and compares it byte for byte.  Every client pins the
server's host key rather than skipping the check: PuTTY by its SHA256
fingerprint, curl (libssh2) by the base64 SHA-256 of the key blob, rclone (Go's
x/crypto/ssh) by a known_hosts file.  Each runs with HOME in the test's own
directory, so neither the user's keys nor PuTTY's saved sessions come into it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.harness import ServerProcess
from tests.support.twistd import Twistd, isolated_home

pytestmark = pytest.mark.interop

SIZE = 2 << 20


def needs(tool: str, package: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        shutil.which(tool) is None,
        reason=f"{tool} is not installed (apt-get install {package})",
    )


def fingerprint(public_key: Path) -> str:
    """``SHA256:...`` as ``ssh-keygen -lf`` prints it (base64 without padding)."""
    line = subprocess.run(
        ["ssh-keygen", "-lf", str(public_key)], capture_output=True, text=True, check=True
    ).stdout
    return line.split()[1]


def client_env(tmp: Path) -> dict[str, str]:
    home = tmp / "client-home"
    home.mkdir(exist_ok=True)
    return {**os.environ, "HOME": str(home)}


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    """``argv`` with no terminal to ask on: PuTTY would prompt for a host key there."""
    return subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=120)


def round_trip(
    up: list[str], down: list[str], env: dict[str, str], tmp: Path, root: Path, original: bytes
) -> None:
    """Run the ``up`` command, check the upload's bytes in the root, then ``down`` and its bytes.

    The commands upload ``tmp/original.bin`` as ``up.bin`` and fetch it back to ``tmp/back.bin``.
    """
    sent = run(up, env)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert (root / "up.bin").read_bytes() == original
    fetched = run(down, env)
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    assert (tmp / "back.bin").read_bytes() == original


@pytest.fixture
def sftp_root(tmp_path: Path) -> Path:
    root = tmp_path / "served"
    root.mkdir()
    return root


@pytest.fixture
def keyed_server(
    start_server: Callable[..., ServerProcess], host_keys: dict[str, Path], sftp_root: Path
) -> ServerProcess:
    """The test server with a known ed25519 host key, serving ``sftp_root`` by SFTP."""
    return start_server(
        host_keys=[host_keys["ed25519"]], env={"SPINDLEX_TEST_SFTP_ROOT": str(sftp_root)}
    )


@pytest.fixture
def original(tmp_path: Path) -> bytes:
    data = os.urandom(SIZE)
    (tmp_path / "original.bin").write_bytes(data)
    return data


def assert_clean(log: str) -> None:
    assert "Traceback" not in log
    assert "login alice" in log


# --- PuTTY -------------------------------------------------------------------------------


def putty_args(server: ServerProcess, host_keys: dict[str, Path]) -> list[str]:
    return [
        "-batch",
        "-P",
        str(server.port),
        "-l",
        "alice",
        "-pw",
        "secret",
        "-hostkey",
        fingerprint(host_keys["ed25519"].with_suffix(".pub")),
    ]


@needs("plink", "putty-tools")
def test_plink_command(
    keyed_server: ServerProcess, host_keys: dict[str, Path], tmp_path: Path
) -> None:
    result = run(
        ["plink", "-ssh", *putty_args(keyed_server, host_keys), "127.0.0.1", "echo from plink"],
        client_env(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"from plink\n", result.stderr
    log = keyed_server.log()
    assert "SSH-2.0-PuTTY" in log
    assert_clean(log)


@needs("psftp", "putty-tools")
def test_psftp_put_and_get(
    keyed_server: ServerProcess,
    host_keys: dict[str, Path],
    sftp_root: Path,
    original: bytes,
    tmp_path: Path,
) -> None:
    script = tmp_path / "psftp.batch"
    back = tmp_path / "back.bin"
    script.write_text(f"put {tmp_path / 'original.bin'} up.bin\nget up.bin {back}\n")
    result = run(
        ["psftp", *putty_args(keyed_server, host_keys), "-b", str(script), "127.0.0.1"],
        client_env(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (sftp_root / "up.bin").read_bytes() == original
    assert back.read_bytes() == original
    assert_clean(keyed_server.log())


@needs("pscp", "putty-tools")
def test_pscp_one_file(
    keyed_server: ServerProcess,
    host_keys: dict[str, Path],
    sftp_root: Path,
    original: bytes,
    tmp_path: Path,
) -> None:
    args = ["pscp", "-sftp", *putty_args(keyed_server, host_keys)]
    env = client_env(tmp_path)
    round_trip(
        [*args, str(tmp_path / "original.bin"), "127.0.0.1:up.bin"],
        [*args, "127.0.0.1:up.bin", str(tmp_path / "back.bin")],
        env,
        tmp_path,
        sftp_root,
        original,
    )
    assert_clean(keyed_server.log())


# --- curl (libssh2) ----------------------------------------------------------------------


def curl_protocols() -> set[str]:
    if shutil.which("curl") is None:
        return set()
    version = subprocess.run(["curl", "-V"], capture_output=True, text=True).stdout
    for line in version.splitlines():
        if line.startswith("Protocols:"):
            return set(line.split()[1:])
    return set()


def curl_args(host_keys: dict[str, Path]) -> list[str]:
    # libssh2 compares the SHA-256 of the key blob with this base64 text,
    # padded: ssh-keygen's fingerprint drops the one "=" of 32 bytes.
    pinned = fingerprint(host_keys["ed25519"].with_suffix(".pub")).removeprefix("SHA256:") + "="
    return ["curl", "-sS", "--user", "alice:secret", "--hostpubsha256", pinned]


@pytest.mark.skipif(
    "sftp" not in curl_protocols(), reason="curl without sftp:// (apt-get install curl)"
)
def test_curl_sftp_upload_and_download(
    keyed_server: ServerProcess,
    host_keys: dict[str, Path],
    sftp_root: Path,
    original: bytes,
    tmp_path: Path,
) -> None:
    url = f"sftp://127.0.0.1:{keyed_server.port}/up.bin"
    env = client_env(tmp_path)
    round_trip(
        [*curl_args(host_keys), "-T", str(tmp_path / "original.bin"), url],
        [*curl_args(host_keys), "-o", str(tmp_path / "back.bin"), url],
        env,
        tmp_path,
        sftp_root,
        original,
    )
    log = keyed_server.log()
    assert "SSH-2.0-libssh2" in log
    assert_clean(log)


@pytest.fixture
def scp_server(tmp_path: Path, host_keys: dict[str, Path], sftp_root: Path) -> Iterator[Twistd]:
    """``twistd spindlex --exec``: curl's scp:// runs the legacy ``scp -t``/``scp -f``."""
    server = Twistd(
        [
            "spindlex",
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--exec",
            "--auth",
            "memory:alice:secret",
            "--host-key",
            str(host_keys["ed25519"]),
        ],
        cwd=sftp_root,
        env=isolated_home(tmp_path / "server"),
    )
    try:
        yield server
    finally:
        server.kill()


@pytest.mark.skipif(
    "scp" not in curl_protocols() or shutil.which("scp") is None,
    reason="curl without scp://, or no scp for the server to run (apt-get install curl)",
)
def test_curl_scp_upload_and_download(
    scp_server: Twistd,
    host_keys: dict[str, Path],
    sftp_root: Path,
    original: bytes,
    tmp_path: Path,
) -> None:
    [port] = scp_server.ports()
    # scp:// paths are the server's own; the exec'd scp runs as this user.
    url = f"scp://127.0.0.1:{port}{sftp_root.resolve()}/up.bin"
    env = client_env(tmp_path)
    round_trip(
        [*curl_args(host_keys), "-T", str(tmp_path / "original.bin"), url],
        [*curl_args(host_keys), "-o", str(tmp_path / "back.bin"), url],
        env,
        tmp_path,
        sftp_root,
        original,
    )
    assert "Traceback" not in scp_server.log()


@needs("pscp", "putty-tools")
def test_pscp_legacy_scp_one_file(
    scp_server: Twistd,
    host_keys: dict[str, Path],
    sftp_root: Path,
    original: bytes,
    tmp_path: Path,
) -> None:
    [port] = scp_server.ports()
    pinned = fingerprint(host_keys["ed25519"].with_suffix(".pub"))
    # -scp: the old protocol over exec, as pscp falls back to without SFTP.
    args = ["pscp", "-scp", "-batch", "-P", str(port), "-l", "alice", "-pw", "secret"]
    args += ["-hostkey", pinned]
    env = client_env(tmp_path)
    round_trip(
        [*args, str(tmp_path / "original.bin"), "127.0.0.1:up.bin"],
        [*args, "127.0.0.1:up.bin", str(tmp_path / "back.bin")],
        env,
        tmp_path,
        sftp_root,
        original,
    )
    assert "Traceback" not in scp_server.log()


# --- rclone (Go's x/crypto/ssh) ----------------------------------------------------------


@needs("rclone", "rclone")
def test_rclone_copyto_up_and_down(
    keyed_server: ServerProcess,
    host_keys: dict[str, Path],
    sftp_root: Path,
    original: bytes,
    tmp_path: Path,
) -> None:
    env = client_env(tmp_path)
    obscured = run(["rclone", "obscure", "secret"], env)
    assert obscured.returncode == 0, obscured.stderr
    known_hosts = tmp_path / "known_hosts"
    public = host_keys["ed25519"].with_suffix(".pub").read_text().split()[:2]
    known_hosts.write_text(f"[127.0.0.1]:{keyed_server.port} {' '.join(public)}\n")
    env.update(
        {
            "RCLONE_CONFIG": str(tmp_path / "rclone.conf"),  # none: only the variables below
            "RCLONE_CONFIG_SRV_TYPE": "sftp",
            "RCLONE_CONFIG_SRV_HOST": "127.0.0.1",
            "RCLONE_CONFIG_SRV_PORT": str(keyed_server.port),
            "RCLONE_CONFIG_SRV_USER": "alice",
            "RCLONE_CONFIG_SRV_PASS": obscured.stdout.decode().strip(),
            "RCLONE_CONFIG_SRV_KNOWN_HOSTS_FILE": str(known_hosts),
            # Plain transfers: no probing for a shell to run md5sum/sha1sum in.
            "RCLONE_CONFIG_SRV_SHELL_TYPE": "none",
        }
    )
    round_trip(
        ["rclone", "copyto", str(tmp_path / "original.bin"), "srv:up.bin"],
        ["rclone", "copyto", "srv:up.bin", str(tmp_path / "back.bin")],
        env,
        tmp_path,
        sftp_root,
        original,
    )
    log = keyed_server.log()
    assert "SSH-2.0-rclone/" in log
    assert_clean(log)
