"""A local S3-compatible server for the tests: moto's server mode, in a child process.

A child process, not a thread of the test: the servers under test and moto
then never share an interpreter lock, and the test can measure them apart.
The child prints the port it got (port 0: the kernel picks a free one) and
runs until its standard input closes.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import stop_process

_SERVE = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""

#: What boto3 needs to sign requests; moto accepts any key.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "spindlex-test",
    "AWS_SECRET_ACCESS_KEY": "spindlex-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def require_moto() -> None:
    try:
        import boto3  # noqa: F401
        import moto.server  # noqa: F401
    except ImportError:
        pytest.skip("moto[server] and boto3 not installed: pip install -e '.[test]'")


class MotoServer:
    """moto's S3 on 127.0.0.1; ``endpoint`` is its URL, ``client`` a boto3 client of it.

    As a context manager it stops when the block ends.
    """

    def __init__(self, log: Path) -> None:
        require_moto()
        import boto3

        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SERVE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # the child's first act: its port, or EOF
        if not line.strip().isdigit():
            self.stop()
            raise AssertionError(f"moto server did not start: {log.read_text()}")
        self.endpoint = f"http://127.0.0.1:{int(line)}"
        self.client: Any = boto3.session.Session(
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
        ).client("s3", endpoint_url=self.endpoint)

    def bucket(self) -> str:
        """A new, empty bucket."""
        name = f"spindlex-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", ()))

    def uploads(self, bucket: str) -> list[str]:
        """Keys of multipart uploads begun and neither completed nor aborted."""
        reply = self.client.list_multipart_uploads(Bucket=bucket)
        return [u["Key"] for u in reply.get("Uploads", ())]

    def __enter__(self) -> MotoServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        stop_process(self.proc, timeout=10)
        self._log.close()
