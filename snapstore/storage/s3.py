"""The S3 backend (botocore; boto3's s3transfer for uploads), for any S3-compatible service:
AWS, SeaweedFS, MinIO, Ceph.

Object ``a/b`` is the key ``PREFIX/a/b`` in the bucket.  Every object but a lock
is immutable and content-named, so an upload either lands whole or not at all
(S3 PUTs are atomic) and no temp names are needed.  Staged packs are written to
a local temp file and uploaded by a background thread while the next pack is
being filled; ``flush`` waits for them.  Large packs go up as multipart uploads
with parts in parallel.  boto3's ``standard`` retry mode retries throttling
(429, ``SlowDown``) and transient errors (5xx, dropped connections) with
exponential backoff and jitter; what still fails becomes one typed error.

Why boto3 (docs/design.md, "S3 client"): it survives ``fork`` with a fresh
client per process (snapstore forks restore and verify workers; obstore's
global runtime hangs a forked child), reads credentials from the environment
and from AWS profiles, and supports ``If-None-Match: *``.
"""
from __future__ import annotations

import os
import tempfile
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from ..errors import UsageError
from .base import (AccessDenied, BucketNotFound, ObjectInfo, ObjectNotFound, StagedObject, Storage,
                   StorageError, StorageUnavailable)

MULTIPART_THRESHOLD = 24 * 1024 * 1024
MULTIPART_CHUNK = 8 * 1024 * 1024
UPLOAD_THREADS = 2
MAX_PENDING_UPLOADS = 3  # staged packs waiting on disk: bounded, like restic's pack size x (connections + 1)
READ_THREADS = 4  # ranged GETs in flight for get_many
READ_AHEAD = READ_THREADS  # ranges fetched or fetching beyond the one in use: memory <= (this + 1) x a range
_CLIENT_LOCK = threading.Lock()

_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "InvalidToken",
           "ExpiredToken", "AuthorizationHeaderMalformed"}
_MISSING = {"NoSuchKey", "404", "NotFound"}
_EXISTS = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}


@dataclass
class Traffic:
    """What this process sent and fetched (benchmarks and the cache tests read it)."""

    downloaded: int = 0
    uploaded: int = 0
    requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, down: int = 0, up: int = 0) -> None:
        with self._lock:
            self.downloaded += down
            self.uploaded += up
            self.requests += 1


@dataclass(frozen=True)
class S3Location:
    """``s3:http[s]://HOST[:PORT]/BUCKET[/PREFIX]`` or ``s3:HOST/BUCKET[/PREFIX]`` (https), as restic."""

    endpoint: str
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> "S3Location":
        rest = url[len("s3:"):]
        if rest.startswith(("http://", "https://")):
            scheme, _, rest = rest.partition("://")
        else:
            scheme = "https"
        host, _, path = rest.partition("/")
        bucket, _, prefix = path.partition("/")
        if not host or not bucket:
            raise UsageError(f"bad S3 repository {url!r}: use s3:http://HOST:PORT/BUCKET/PREFIX")
        return cls(f"{scheme}://{host}", bucket, prefix.strip("/"))

    def __str__(self) -> str:
        return f"s3:{self.endpoint}/{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")


@dataclass(frozen=True)
class S3Options:
    region: str | None = None
    profile: str | None = None
    path_style: bool = True  # right for SeaweedFS/MinIO; AWS accepts it too (s3.bucket-lookup=dns for virtual hosts)
    retries: int = 5
    connect_timeout: float = 10.0
    read_timeout: float = 60.0

    @classmethod
    def from_pairs(cls, pairs: dict[str, str]) -> "S3Options":
        """From ``-o s3.KEY=VALUE`` options: region, profile, bucket-lookup (path|dns), retries, timeout."""
        kwargs: dict = {}
        for key, value in pairs.items():
            if not key.startswith("s3."):
                continue
            k = key[3:]
            try:
                if k == "region":
                    kwargs["region"] = value
                elif k == "profile":
                    kwargs["profile"] = value
                elif k == "bucket-lookup":
                    if value not in ("path", "dns", "auto"):
                        raise ValueError("use path, dns or auto")
                    kwargs["path_style"] = value != "dns"
                elif k == "retries":
                    kwargs["retries"] = int(value)
                elif k == "timeout":
                    kwargs["read_timeout"] = kwargs["connect_timeout"] = float(value)
                else:
                    raise ValueError("unknown option")
            except ValueError as exc:
                raise UsageError(f"bad option {key}={value!r}: {exc}") from None
        return cls(**kwargs)


class _S3Staged(StagedObject):
    def __init__(self, storage: "S3Storage"):
        self._storage = storage
        fd, self._path = tempfile.mkstemp(prefix="snapstore-pack-", dir=os.environ.get("SNAPSTORE_TEMP_DIR"))
        self._file = os.fdopen(fd, "wb")
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:
        self._file.write(data)
        self.size += len(data)

    def commit(self, name: str) -> None:
        self._file.close()
        self._storage._upload_later(self._path, name)

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        try:
            os.unlink(self._path)
        except FileNotFoundError:
            pass


class S3Storage(Storage):
    def __init__(self, where: S3Location, options: S3Options = S3Options()):
        self.where = where
        self.options = options
        self.location = str(where)
        self._pid = -1
        self._client = None
        self._session = None
        self._uploads: ThreadPoolExecutor | None = None
        self._reads: ThreadPoolExecutor | None = None
        self._pending: list[Future] = []
        self._slots = threading.BoundedSemaphore(MAX_PENDING_UPLOADS)
        self.traffic = Traffic()

    def __getstate__(self) -> dict:  # handed to worker processes: each makes its own client
        return {"where": self.where, "options": self.options}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["where"], state["options"])

    # -- the client ---------------------------------------------------------
    @property
    def client(self):
        """One client per process: a forked worker must not share the parent's connections.

        Made under a lock (read-ahead and upload threads may ask at once).  The botocore
        session (its parsed service models: most of a client's cost) is kept across a fork,
        so a restore or verify worker makes its client in milliseconds.  botocore, not boto3:
        importing boto3 (and s3transfer) costs a command a few tenths of a second, and only
        uploads need s3transfer.
        """
        if self._client is not None and self._pid == os.getpid():
            return self._client
        with _CLIENT_LOCK:
            if self._client is None or self._pid != os.getpid():
                self._client = self._make_client()
                self._pid = os.getpid()
                self._uploads = self._reads = None
                self._pending = []
        return self._client

    def _make_client(self):
        import botocore.config
        import botocore.exceptions
        import botocore.session
        config = botocore.config.Config(
            retries={"max_attempts": self.options.retries, "mode": "standard"},
            connect_timeout=self.options.connect_timeout, read_timeout=self.options.read_timeout,
            s3={"addressing_style": "path" if self.options.path_style else "virtual"},
            max_pool_connections=16,
            request_checksum_calculation="when_required", response_checksum_validation="when_required")
        try:
            if self._session is None:
                self._session = botocore.session.Session(profile=self.options.profile)
            region = self.options.region or self._session.get_config_variable("region") or "us-east-1"
            return self._session.create_client("s3", endpoint_url=self.where.endpoint, region_name=region,
                                               config=config)
        except botocore.exceptions.ProfileNotFound as exc:
            raise UsageError(str(exc)) from None

    def key(self, name: str) -> str:
        return f"{self.where.prefix}/{name}" if self.where.prefix else name

    def _error(self, exc: Exception, name: str = "") -> StorageError:
        """One typed, one-line error for whatever boto3 raised."""
        import botocore.exceptions as bex
        what = f" ({name})" if name else ""
        if isinstance(exc, bex.NoCredentialsError):
            return AccessDenied(f"no S3 credentials for {self.location}: set AWS_ACCESS_KEY_ID and "
                                "AWS_SECRET_ACCESS_KEY or use -o s3.profile=NAME")
        if isinstance(exc, (bex.EndpointConnectionError, bex.ConnectionClosedError, bex.ConnectTimeoutError,
                            bex.ReadTimeoutError, bex.ConnectionError)):
            return StorageUnavailable(f"cannot reach {self.where.endpoint}{what}: the S3 server did not "
                                      "answer (after retries)")
        if isinstance(exc, bex.ClientError):
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            if code == "NoSuchBucket":
                return BucketNotFound(f"bucket {self.where.bucket!r} does not exist at {self.where.endpoint} "
                                      "(create it, then run 'snapstore init')")
            if code in _MISSING:
                return ObjectNotFound(name, self.location)
            if code in _DENIED:
                return AccessDenied(f"access denied by {self.where.endpoint}{what}: {code} "
                                    "(check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)")
            return StorageError(f"S3 request failed{what}: {code} {err.get('Message', '')}".rstrip())
        if isinstance(exc, bex.BotoCoreError):
            return StorageError(f"S3 request failed{what}: {exc}")
        raise exc

    def _call(self, name: str, fn, **kwargs):
        import botocore.exceptions as bex
        self.traffic.add()
        try:
            return fn(Bucket=self.where.bucket, **kwargs)
        except (bex.BotoCoreError, bex.ClientError) as exc:
            raise self._error(exc, name) from None

    # -- reading -------------------------------------------------------------
    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        import botocore.exceptions as bex
        cut = len(self.key(""))
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.where.bucket, Prefix=self.key(prefix))
        try:
            for page in pages:
                self.traffic.add()
                for obj in page.get("Contents", ()):
                    yield ObjectInfo(obj["Key"][cut:], obj["Size"])
        except (bex.BotoCoreError, bex.ClientError) as exc:
            raise self._error(exc, prefix) from None

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        return self._get(self.client, name, offset, length)

    def _get(self, client, name: str, offset: int = 0, length: int | None = None) -> bytes:
        import botocore.exceptions as bex
        kwargs = {}
        if length is not None:
            if length <= 0:
                return b""
            kwargs["Range"] = f"bytes={offset}-{offset + length - 1}"
        elif offset:
            kwargs["Range"] = f"bytes={offset}-"
        try:
            response = client.get_object(Bucket=self.where.bucket, Key=self.key(name), **kwargs)
            data = response["Body"].read()
            self.traffic.add(down=len(data))
            return data
        except bex.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                self.stat(name)  # past the end of an existing object: nothing there
                return b""
            raise self._error(exc, name) from None
        except bex.BotoCoreError as exc:
            raise self._error(exc, name) from None

    def get_many(self, wanted: Iterable[tuple[str, int, int]]) -> Iterator[bytes]:
        """Ranged GETs on ``READ_THREADS`` threads, at most ``READ_AHEAD`` ranges ahead of the
        one handed out; results come in request order, the first failure is raised in its turn."""
        client = self.client  # made here, before any thread needs it
        if self._reads is None:
            self._reads = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="snapstore-read")
        requests = iter(wanted)
        window: deque[Future] = deque()

        def fill() -> None:
            while len(window) < READ_AHEAD:
                request = next(requests, None)
                if request is None:
                    return
                window.append(self._reads.submit(self._get, client, *request))

        try:
            fill()
            while window:
                data = window.popleft().result()
                fill()
                yield data
        finally:
            for future in window:  # the consumer stopped (an error, a closed pipe): drop the rest
                future.cancel()

    def stat(self, name: str) -> ObjectInfo:
        head = self._call(name, self.client.head_object, Key=self.key(name))
        return ObjectInfo(name, head["ContentLength"])

    # -- writing -------------------------------------------------------------
    def put(self, name: str, data: bytes, *, create_only: bool = False) -> bool:
        import botocore.exceptions as bex
        kwargs = {"IfNoneMatch": "*"} if create_only else {}
        try:
            self.traffic.add(up=len(data))
            self.client.put_object(Bucket=self.where.bucket, Key=self.key(name), Body=data, **kwargs)
        except bex.ClientError as exc:
            if create_only and str(exc.response.get("Error", {}).get("Code")) in _EXISTS:
                return False
            raise self._error(exc, name) from None
        except bex.BotoCoreError as exc:
            raise self._error(exc, name) from None
        return True

    def delete(self, name: str) -> None:
        self._call(name, self.client.delete_object, Key=self.key(name))

    def stage(self, kind: str) -> StagedObject:
        return _S3Staged(self)

    def _upload_later(self, path: str, name: str) -> None:
        client = self.client
        if self._uploads is None:
            self._uploads = ThreadPoolExecutor(UPLOAD_THREADS, thread_name_prefix="snapstore-upload")
        self._slots.acquire()  # at most a few staged packs wait: the backup slows to the upload rate
        try:
            self._pending.append(self._uploads.submit(self._upload, client, path, name))
        except BaseException:
            self._slots.release()
            raise

    def _upload(self, client, path: str, name: str) -> None:
        import boto3.s3.transfer
        import botocore.exceptions as bex
        try:
            config = boto3.s3.transfer.TransferConfig(
                multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_CHUNK,
                max_concurrency=4, use_threads=True)
            with boto3.s3.transfer.S3Transfer(client, config) as transfer:  # what boto3's upload_file does
                transfer.upload_file(path, self.where.bucket, self.key(name))
            self.traffic.add(up=os.path.getsize(path))
        except (bex.BotoCoreError, bex.ClientError) as exc:
            raise self._error(exc, name) from None
        except boto3.exceptions.S3UploadFailedError as exc:
            raise StorageError(f"S3 upload of {name} failed: {exc}") from None
        finally:
            self._slots.release()
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        first: BaseException | None = None
        for future in pending:
            exc = future.exception()
            if exc is not None and first is None:
                first = exc
        if first is not None:
            raise first

    def close(self) -> None:
        try:
            self.flush()
        except Exception:
            pass
        if self._pid == os.getpid():
            for pool in (self._uploads, self._reads):
                if pool is not None:
                    pool.shutdown(wait=True, cancel_futures=True)
        self._uploads = self._reads = None
