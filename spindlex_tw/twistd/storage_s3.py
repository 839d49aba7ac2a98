"""``twistd spindlex --storage s3://BUCKET[/PREFIX]``: SFTP served from S3-compatible storage.

``--s3-endpoint URL`` names the service (MinIO, Ceph RGW, any S3-compatible
one; without it, AWS S3). Credentials and the region come from boto3's usual
chain: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``,
``~/.aws/credentials`` and ``~/.aws/config``, an instance role. Each user's
home is a prefix below ``PREFIX``: ``--home '{user}'`` puts alice's files
under ``PREFIX/alice/``; without ``--home`` every user sees all of ``PREFIX``.

The bucket is checked at start-up (one HEAD request), so a wrong endpoint,
missing credentials or a missing bucket stop the server with one line
instead of failing each login. docs/storage-s3.md has the deployment recipe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twisted.python import usage

if TYPE_CHECKING:
    # Imported when --storage s3:// is used: boto3 is an optional extra.
    from spindlex_tw.fs.s3 import Bucket, S3FileSystem

SCHEME = "s3://"
# S3's rule for bucket names; MinIO and Ceph RGW follow it.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")

#: twistd's optParameters rows: name, short, default, help.
OPTIONS: list[list[str | None]] = [
    [
        "s3-endpoint",
        None,
        None,
        "URL of the S3-compatible service for --storage s3://BUCKET[/PREFIX] (MinIO, "
        "Ceph RGW...; default AWS S3). Credentials from AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, AWS_PROFILE or ~/.aws.",
    ],
]


@dataclass(frozen=True)
class S3Storage:
    """The bucket and the prefix every home is below."""

    bucket: Bucket
    prefix: str

    def home(self, template: str, username: str) -> str:
        """The prefix of ``username``'s home, by the ``--home`` template."""
        return "/".join(p for p in template.replace("{user}", username).split("/") if p)

    def file_system(self, home: str) -> S3FileSystem:
        from spindlex_tw.fs.s3 import S3FileSystem

        return S3FileSystem(self.bucket, "/".join(p for p in (self.prefix, home) if p))


def parse_url(text: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix")``."""
    bucket, _, prefix = text[len(SCHEME) :].partition("/")
    if not _BUCKET.fullmatch(bucket):
        raise usage.UsageError(
            f"--storage expects s3://BUCKET[/PREFIX] with a bucket name of 3 to 63 "
            f"lower-case letters, digits, dots and hyphens, got {text!r}"
        )
    return bucket, prefix.strip("/")


def connect(options: usage.Options) -> S3Storage | None:
    """The bucket ``--storage`` names, checked to be there; None for another storage."""
    storage, endpoint = str(options["storage"]), options["s3-endpoint"]
    if not storage.startswith(SCHEME):
        if endpoint is not None:
            raise usage.UsageError("--s3-endpoint needs --storage s3://BUCKET[/PREFIX]")
        return None
    name, prefix = parse_url(storage)
    if endpoint is not None and not re.match(r"https?://[^/]", endpoint):
        raise usage.UsageError(f"--s3-endpoint expects an http(s):// URL, got {endpoint!r}")
    client = _client(endpoint)
    _check(client, name, endpoint or "AWS S3")
    from spindlex_tw.fs.s3 import Bucket

    return S3Storage(Bucket(client, name), prefix)


def _client(endpoint: str | None) -> Any:
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise usage.UsageError(
            "--storage s3:// needs boto3, which is not installed: pip install 'spindlex-tw[s3]'"
        ) from None
    config = Config(
        # Every SFTP worker thread may be in a request at once.
        max_pool_connections=64,
        connect_timeout=10,
        retries={"max_attempts": 3, "mode": "standard"},
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint, config=config)


def _check(client: Any, name: str, where: str) -> None:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        client.head_bucket(Bucket=name)
    except NoCredentialsError:
        raise usage.UsageError(
            "--storage s3://: no AWS credentials (set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or write ~/.aws/credentials)"
        ) from None
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchBucket"):
            raise usage.UsageError(f"--storage s3://{name}: no such bucket at {where}") from None
        if code in ("403", "AccessDenied"):
            raise usage.UsageError(f"--storage s3://{name}: access denied by {where}") from None
        raise usage.UsageError(f"--storage s3://{name}: {where} answered {code}") from None
    except BotoCoreError as exc:
        raise usage.UsageError(f"--storage s3://{name}: cannot reach {where}: {exc}") from None
