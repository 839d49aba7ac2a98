"""One bucket of an S3-compatible service: objects by key, failures as OSError.

Every method is one (or, for listings, a few) blocking HTTP requests made
through botocore; the SFTP engine calls them on its worker threads. A botocore
client is thread-safe, so one :class:`Bucket` serves every session of the
process. What the service answers is turned into the errno the file-system
contract speaks (a missing key is ENOENT, a refusal EACCES, anything else of
the service or the network EIO), so the engine answers the client with an
SFTP status and never a traceback.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

_T = TypeVar("_T")

_MISSING = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchUpload"})
_DENIED = frozenset({"403", "AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId"})


def _error(number: int, text: str | None = None) -> OSError:
    return OSError(number, text or os.strerror(number))


def translated(call: Callable[[], _T]) -> _T:
    """``call()``, its botocore failure raised as the OSError the engine understands."""
    try:
        return call()
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _MISSING:
            raise _error(errno.ENOENT) from exc
        if code in _DENIED:
            raise _error(errno.EACCES) from exc
        raise _error(errno.EIO, f"Object storage refused the request: {code}") from exc
    except BotoCoreError as exc:
        raise _error(errno.EIO, "Object storage cannot be reached") from exc


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a HEAD or a listing says of one object."""

    key: str
    size: int
    mtime: int


def _seconds(value: Any) -> int:
    return int(value.timestamp()) if isinstance(value, datetime) else 0


class Bucket:
    """The objects of ``name`` reached through the botocore S3 ``client``."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name

    def url(self, key: str) -> str:
        return f"s3://{self.name}/{key}"

    # --- single objects --------------------------------------------------------------------

    def head(self, key: str) -> ObjectInfo | None:
        """The object ``key``, or None if there is none."""
        try:
            reply = translated(lambda: self.client.head_object(Bucket=self.name, Key=key))
        except FileNotFoundError:
            return None
        return ObjectInfo(key, int(reply["ContentLength"]), _seconds(reply.get("LastModified")))

    def stream(self, key: str, start: int) -> Any:
        """The bytes of ``key`` from ``start`` to its end, as a body read piece by piece."""
        reply = translated(
            lambda: self.client.get_object(Bucket=self.name, Key=key, Range=f"bytes={start}-")
        )
        return reply["Body"]

    def put(self, key: str, body: bytes) -> None:
        translated(lambda: self.client.put_object(Bucket=self.name, Key=key, Body=body))

    def delete(self, key: str) -> None:
        translated(lambda: self.client.delete_object(Bucket=self.name, Key=key))

    def copy(self, source: str, target: str) -> None:
        """``source`` to ``target`` inside the service (a multipart copy for large objects)."""
        translated(
            lambda: self.client.copy({"Bucket": self.name, "Key": source}, self.name, target)
        )

    # --- listings ----------------------------------------------------------------------------

    def pages(self, prefix: str, delimiter: bool) -> Iterator[tuple[list[str], list[ObjectInfo]]]:
        """The keys below ``prefix`` one listing page at a time: (common prefixes, objects).

        With ``delimiter`` only the level directly below (the names of a
        directory); without, every key below (a usage count).
        """
        token: str | None = None
        while True:
            arguments: dict[str, Any] = {"Bucket": self.name, "Prefix": prefix}
            if delimiter:
                arguments["Delimiter"] = "/"
            if token is not None:
                arguments["ContinuationToken"] = token
            page = translated(lambda a=arguments: self.client.list_objects_v2(**a))  # type: ignore[misc]
            prefixes = [str(p["Prefix"]) for p in page.get("CommonPrefixes", ())]
            objects = [
                ObjectInfo(str(o["Key"]), int(o["Size"]), _seconds(o.get("LastModified")))
                for o in page.get("Contents", ())
            ]
            yield prefixes, objects
            if not page.get("IsTruncated"):
                return
            token = str(page["NextContinuationToken"])

    def any_below(self, prefix: str) -> bool:
        """Whether any key starts with ``prefix``."""
        page = translated(
            lambda: self.client.list_objects_v2(Bucket=self.name, Prefix=prefix, MaxKeys=1)
        )
        return bool(page.get("KeyCount") or page.get("Contents"))

    def keys_below(self, prefix: str, at_most: int) -> list[str] | None:
        """The keys below ``prefix``, or None if there are more than ``at_most``."""
        keys: list[str] = []
        for _, objects in self.pages(prefix, delimiter=False):
            keys.extend(o.key for o in objects)
            if len(keys) > at_most:
                return None
        return keys

    # --- multipart uploads -------------------------------------------------------------------

    def start_upload(self, key: str) -> str:
        reply = translated(lambda: self.client.create_multipart_upload(Bucket=self.name, Key=key))
        return str(reply["UploadId"])

    def upload_part(self, key: str, upload_id: str, number: int, body: bytes) -> str:
        reply = translated(
            lambda: self.client.upload_part(
                Bucket=self.name, Key=key, UploadId=upload_id, PartNumber=number, Body=body
            )
        )
        return str(reply["ETag"])

    def complete_upload(self, key: str, upload_id: str, etags: list[str]) -> None:
        parts = [{"ETag": tag, "PartNumber": n} for n, tag in enumerate(etags, 1)]
        translated(
            lambda: self.client.complete_multipart_upload(
                Bucket=self.name, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        )

    def abort_upload(self, key: str, upload_id: str) -> None:
        translated(
            lambda: self.client.abort_multipart_upload(
                Bucket=self.name, Key=key, UploadId=upload_id
            )
        )
