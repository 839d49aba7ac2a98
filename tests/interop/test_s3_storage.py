"""``twistd spindlex --storage s3://`` on a real S3-compatible server (moto), with real clients.

Each check is made twice over: by the SFTP client (what the user sees) and
by listing the bucket with boto3 (what the storage holds), so "the file is
there" means an object under the user's prefix, not a server's cache.
"""

from __future__ import annotations

import io
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from tests.support.clients import paramiko_client
from tests.support.harness import ROOT, OpenSSH
from tests.support.moto import CREDENTIALS, MotoServer
from tests.support.twistd import Twistd, isolated_home
from tests.support.waiting import poll

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("sshpass") is None, reason="sshpass not installed"),
]

PREFIX = "tenants/one"


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    with MotoServer(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


def start(tmp_path: Path, moto: MotoServer, bucket: str, *extra: str) -> Twistd:
    served = tmp_path / "cwd"
    served.mkdir(exist_ok=True)
    return Twistd(
        [
            "spindlex",
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--auth",
            "memory:alice:secret",
            "--storage",
            f"s3://{bucket}/{PREFIX}",
            "--s3-endpoint",
            moto.endpoint,
            "--home",
            "home/{user}",
            *extra,
        ],
        cwd=served,
        env={**isolated_home(tmp_path), **CREDENTIALS},
    )


@pytest.fixture
def bucket(moto: MotoServer) -> str:
    return moto.bucket()


@pytest.fixture
def server(tmp_path: Path, moto: MotoServer, bucket: str) -> Iterator[OpenSSH]:
    twistd = start(tmp_path, moto, bucket)
    try:
        [port] = twistd.ports()
        yield OpenSSH(tmp_path, port)
    finally:
        twistd.stop()


HOME = f"{PREFIX}/home/alice/"


def test_openssh_sftp_session_on_objects(
    server: OpenSSH, moto: MotoServer, bucket: str, tmp_path: Path
) -> None:
    # Over one 8 MiB part: the upload goes as a multipart upload of two parts.
    payload = os.urandom(9 << 20)
    upload = tmp_path / "upload.bin"
    upload.write_bytes(payload)
    fetched = tmp_path / "fetched.bin"
    batch = (
        "mkdir dir\n"
        "mkdir empty\n"
        "mkdir gone\n"
        f"put {upload} dir/data.bin\n"
        "rename dir/data.bin dir/moved.bin\n"
        "rmdir gone\n"
        f"get dir/moved.bin {fetched}\n"
        "ls -l dir\n"
        "rename dir renamed\n"
        "ls -1\n"
    )
    done = server.sftp("alice", "secret", batch)
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    assert fetched.read_bytes() == payload
    assert re.search(rf"-rw-r--r-- .* {len(payload)} .* dir/moved\.bin", out), out
    assert out.rstrip().splitlines()[-2:] == ["empty", "renamed"]
    assert moto.keys(bucket) == [HOME + "empty/", HOME + "renamed/", HOME + "renamed/moved.bin"]
    # The empty directory is a marker object, so a new session still finds it.
    again = server.sftp("alice", "secret", "rm renamed/moved.bin\nls -1\nls -1 renamed\n")
    assert again.returncode == 0, again.stderr.decode()
    listed = [line for line in again.stdout.decode().splitlines() if not line.startswith("sftp>")]
    assert listed == ["Removing /renamed/moved.bin", "empty", "renamed"]
    assert moto.keys(bucket) == [HOME + "empty/", HOME + "renamed/"]
    assert moto.uploads(bucket) == []


def test_paramiko_sees_what_objects_cannot_do(
    server: OpenSSH, moto: MotoServer, bucket: str
) -> None:
    ssh = paramiko_client(server.port)
    try:
        sftp = ssh.open_sftp()
        with sftp.open("/f", "w") as f:
            f.write(b"0123456789")
            f.flush()
            f.seek(100)  # a hole: not the end of what was written
            with pytest.raises(OSError, match="does not support writing at an offset other"):
                f.write(b"x")
                f.flush()
        # The handle's CLOSE still stores what was written in order.
        assert sftp.open("/f").read() == b"0123456789"
        with pytest.raises(OSError, match="does not support writing into an existing file"):
            sftp.open("/f", "r+")
        with pytest.raises(OSError, match="does not support symbolic links"):
            sftp.symlink("f", "/link")
        with pytest.raises(OSError, match="does not support changing the size"):
            sftp.truncate("/f", 3)
        # Times and modes are not kept, and setting them is no error (as SFTPGo's).
        sftp.chmod("/f", 0o600)
        sftp.utime("/f", (1, 2))
        assert sftp.stat("/f").st_size == 10
        # Written again whole, the object is replaced when the upload closes.
        with sftp.open("/f", "w") as f:
            f.write(b"new")
            assert sftp.open("/f").read() == b"0123456789"
        assert sftp.open("/f").read() == b"new"
    finally:
        ssh.close()
    assert moto.keys(bucket) == [HOME + "f"]


def test_quota_counts_the_bucket(tmp_path: Path, moto: MotoServer, bucket: str) -> None:
    # Written by someone else (another instance): the quota is counted from the bucket.
    moto.client.put_object(Bucket=bucket, Key=HOME + "theirs.bin", Body=b"t" * 900_000)
    twistd = start(tmp_path, moto, bucket, "--quota", "1M")
    try:
        [port] = twistd.ports()
        ssh = paramiko_client(port)
        try:
            sftp = ssh.open_sftp()
            sftp.putfo(io.BytesIO(os.urandom(100_000)), "/small.bin")
            # statvfs reports the quota: 1024 KiB, of which 48576 bytes (11 blocks) are left.
            df = OpenSSH(tmp_path, port).sftp("alice", "secret", "df\n").stdout.decode()
            assert re.search(r"\b1024\s+980\s+44\s", df), df
            with pytest.raises(OSError, match="Quota exceeded"), sftp.open("/big", "w") as f:
                f.write(os.urandom(200_000))
                f.flush()
        finally:
            ssh.close()
    finally:
        twistd.stop()
    assert HOME + "small.bin" in moto.keys(bucket)


def test_cut_off_upload_leaves_no_object_and_no_parts(
    server: OpenSSH, moto: MotoServer, bucket: str
) -> None:
    ssh = paramiko_client(server.port)
    sftp = ssh.open_sftp()
    upload = sftp.open("/partial.bin", "w")
    chunk = os.urandom(1 << 15)
    for _ in range(9 << 5):  # 9 MiB: one part sent, the rest buffered
        upload.write(chunk)
    upload.flush()
    poll(lambda: moto.uploads(bucket) or None, timeout=30, what="a multipart upload begun")
    # The client goes away without closing the file.
    transport = ssh.get_transport()
    assert isinstance(transport, paramiko.Transport)
    transport.sock.close()
    ssh.close()
    poll(lambda: moto.uploads(bucket) == [] or None, timeout=30, what="the upload aborted")
    assert moto.keys(bucket) == []


def test_bad_storage_options_stop_with_one_line(
    tmp_path: Path, moto: MotoServer, bucket: str
) -> None:
    cases = [
        (["--storage", "s3://"], "bucket name"),
        (["--storage", "s3://NO_SUCH"], "bucket name"),
        (["--storage", "s3://missing-bucket", "--s3-endpoint", moto.endpoint], "no such bucket"),
        (["--storage", f"s3://{bucket}", "--s3-endpoint", "http://127.0.0.1:9"], "cannot reach"),
        (["--s3-endpoint", moto.endpoint], "needs --storage s3://"),
    ]
    for options, message in cases:
        twistd = Twistd(
            ["spindlex", "--listen", "tcp:0:interface=127.0.0.1", *options],
            cwd=tmp_path,
            env={**isolated_home(tmp_path), **CREDENTIALS, "AWS_MAX_ATTEMPTS": "1"},
        )
        assert twistd.proc.wait(60) == 2, twistd.log()
        assert message in twistd.log(), twistd.log()


def test_without_boto3_s3_storage_is_a_one_line_error(tmp_path: Path, bucket: str) -> None:
    # boto3 and botocore made unimportable, as where the s3 extra is not installed.
    stub = tmp_path / "no-boto3"
    stub.mkdir()
    for module in ("boto3", "botocore"):
        (stub / f"{module}.py").write_text(f"raise ImportError('No module named {module}')\n")
    common = ["spindlex", "--listen", "tcp:0:interface=127.0.0.1"]
    env = {**isolated_home(tmp_path), **CREDENTIALS}
    path = Path(f"{stub}{os.pathsep}{ROOT}")
    refused = Twistd([*common, "--storage", f"s3://{bucket}"], tmp_path, env, pythonpath=path)
    assert refused.proc.wait(60) == 2, refused.log()
    assert "needs boto3, which is not installed: pip install 'spindlex-tw[s3]'" in refused.log()
    # Every other storage runs without it.
    served = Twistd([*common, "--storage", "memory"], tmp_path, env, pythonpath=path)
    try:
        served.ports()
    finally:
        served.stop()
