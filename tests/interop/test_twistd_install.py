"""A fresh clone in a fresh venv: ``twistd -n spindlex`` with no options, then OpenSSH's sftp.

The venv sees the system's site-packages (Twisted, cryptography... are not
downloaded again) but ``pip install .`` of the clone is what provides
spindlex_tw: the checks below make sure the code running is the installed copy.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.support.harness import ROOT, OpenSSH
from tests.support.twistd import PASSWORD, Twistd, isolated_home

pytestmark = [pytest.mark.interop, pytest.mark.timeout(180)]

FINGERPRINT = re.compile(r"host key ssh-ed25519 (SHA256:\S+)")


def _run(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> str:
    result = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{cmd}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _venv(tmp: Path, name: str, env: dict[str, str]) -> Path:
    venv = tmp / name
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], env, tmp)
    return venv / "bin"


def _twistd(bin_dir: Path) -> list[str]:
    # Twisted comes from the system site-packages, so the venv has no twistd script of
    # its own: run twistd's entry point with the venv's interpreter instead.
    return [str(bin_dir / "python"), "-c", "from twisted.scripts.twistd import run; run()"]


def _skip_without_package_index(tmp: Path, env: dict[str, str]) -> None:
    """Skip unless pip can fetch the build backend, as ``pip install .`` must."""
    with open(ROOT / "pyproject.toml", "rb") as pyproject:
        backend = tomllib.load(pyproject)["build-system"]["requires"]
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--retries", "0"]
    probe = subprocess.run(
        [*pip, "--timeout", "15", "--dest", str(tmp / "probe"), *backend],
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(
            f"pip cannot fetch the build backend {' '.join(backend)} from its package index "
            f"({last}); run this test where the index is reachable (see README)"
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A clone of the repository installed with ``pip install .`` into a new venv."""
    tmp = tmp_path_factory.mktemp("install")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(isolated_home(tmp))  # pip's cache and config go to the test home too
    env["PIP_NO_CACHE_DIR"] = "1"
    _skip_without_package_index(tmp, env)
    clone = tmp / "clone"
    _run(["git", "clone", "--quiet", str(ROOT), str(clone)], env, tmp)
    bin_dir = _venv(tmp, "venv", env)
    _run([str(bin_dir / "pip"), "install", "--quiet", str(clone)], env, tmp, timeout=300)
    where = _run(
        [str(bin_dir / "python"), "-c", "import spindlex_tw; print(spindlex_tw.__file__)"],
        env,
        tmp,
    )
    assert where.startswith(str(tmp / "venv")), where
    return bin_dir, env


def _sftp(
    client: OpenSSH, user: str, commands: str, *, key: Path | None = None, password: str = ""
) -> subprocess.CompletedProcess[bytes]:
    auth = (
        ["-i", str(key), "-o", "IdentitiesOnly=yes"] if key else ["-o", "PubkeyAuthentication=no"]
    )
    cmd = ["sftp", *client.options(batch=key is not None), *auth, "-P", str(client.port)]
    cmd.append(f"{user}@127.0.0.1")
    if password:
        cmd = ["sshpass", "-p", password, *cmd]
    return subprocess.run(cmd, input=commands.encode(), capture_output=True, timeout=60)


def test_embedded_default_from_a_fresh_install(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    bin_dir, env = installed
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 2222)) == 0:
            pytest.fail("port 2222 is taken; the embedded default listens there")
    home = Path(env["HOME"])
    key = home / ".ssh" / "id_ed25519"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-f", str(key)], check=True)
    (home / ".ssh" / "authorized_keys").write_text(key.with_suffix(".pub").read_text())
    served = tmp_path / "empty"
    served.mkdir()
    user = _run(["id", "-un"], env, tmp_path).strip()
    state_env = {"HOME": env["HOME"]}  # no XDG_STATE_HOME: the ~/.local/state default

    server = Twistd(["spindlex"], served, state_env, _twistd(bin_dir), pythonpath=None)
    try:
        [port] = server.ports()
        assert port == 2222
        password = server.wait_for(PASSWORD)
        assert password["user"] == user
        fingerprint = server.wait_for(FINGERPRINT)[1]
        server.wait_for(re.compile(r"listening on 127\.0\.0\.1:2222"))
        client = OpenSSH(tmp_path, port)

        upload = tmp_path / "upload.bin"
        upload.write_bytes(os.urandom(300_000))
        by_key = _sftp(
            client, user, f"put {upload} by_key.bin\nget by_key.bin {tmp_path}/k.bin\n", key=key
        )
        assert by_key.returncode == 0, by_key.stderr
        by_password = _sftp(
            client,
            user,
            f"put {upload} by_pw.bin\nget by_pw.bin {tmp_path}/p.bin\n",
            password=password["password"],
        )
        assert by_password.returncode == 0, by_password.stderr
        for name in ("by_key.bin", "by_pw.bin"):
            assert (served / name).read_bytes() == upload.read_bytes()
        assert (tmp_path / "k.bin").read_bytes() == (tmp_path / "p.bin").read_bytes()
        server.wait_for(re.compile(rf"login {user} from 127\.0\.0\.1:\d+ by publickey"))
        assert server.stop() == 0, server.log()
    finally:
        server.kill()

    host_key = home / ".local" / "state" / "spindlex_tw" / "host_ed25519"
    assert stat.S_IMODE(host_key.stat().st_mode) == 0o600
    before = host_key.read_bytes()

    # Started again: the same host key, which the client's known_hosts already trusts.
    again = Twistd(["spindlex"], served, state_env, _twistd(bin_dir), pythonpath=None)
    try:
        again.ports()
        assert again.wait_for(FINGERPRINT)[1] == fingerprint
        trusted = subprocess.run(
            [
                "sftp",
                "-F",
                "/dev/null",
                "-o",
                f"UserKnownHostsFile={client.known_hosts}",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "-i",
                str(key),
                "-P",
                "2222",
                f"{user}@127.0.0.1",
            ],
            input=b"ls\n",
            capture_output=True,
            timeout=60,
        )
        assert trusted.returncode == 0, trusted.stderr
        assert again.stop() == 0
    finally:
        again.kill()
    assert host_key.read_bytes() == before


def test_editable_install_finds_the_plugin(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    _, env = installed
    bin_dir = _venv(tmp_path, "editable", env)
    clone = tmp_path / "clone"
    _run(["git", "clone", "--quiet", str(ROOT), str(clone)], env, tmp_path)
    _run([str(bin_dir / "pip"), "install", "--quiet", "-e", str(clone)], env, tmp_path, 300)
    help_text = _run([*_twistd(bin_dir), "spindlex", "--help"], env, tmp_path)
    assert "--sftp-root" in help_text and "--authorized-keys" in help_text
