"""S3-compatible object storage (AWS S3, MinIO, Ceph RGW) as an SFTP file system, on boto3.

:class:`S3FileSystem` serves the keys of a bucket below a prefix;
:class:`Bucket` is the bucket, shared by every session of the process.
docs/storage-s3.md says what SFTP can and cannot do on objects.
"""

from spindlex_tw.fs.s3.bucket import Bucket
from spindlex_tw.fs.s3.filesystem import S3FileSystem

__all__ = ["Bucket", "S3FileSystem"]
