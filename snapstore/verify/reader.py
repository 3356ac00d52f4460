"""Reading single blobs (chunk-list trees) through verify's view of the repository.

Like ``BlobReader`` every blob is decompressed and re-hashed, but a failure is
a ``BlobFault`` naming the blob, its pack and the kind of damage, so the walk
can attribute it.  Tree blobs read while walking are kept in a small cache:
successive snapshots share their base lists, and the full check re-reads them
to re-derive digests.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import BinaryIO

import blake3
import zstandard

from ..repository.pack import CODEC_RAW
from .faults import BlobFault
from .view import RepoView

CACHE_BYTES = 64 * 1024 * 1024
MAX_OPEN = 16


class TreeReader:
    def __init__(self, view: RepoView, cache_bytes: int = CACHE_BYTES):
        self.view = view
        self._files: OrderedDict[bytes, BinaryIO] = OrderedDict()
        self._cache: OrderedDict[bytes, bytes] = OrderedDict()
        self._cache_bytes = 0
        self._cache_limit = cache_bytes
        self._dctx = zstandard.ZstdDecompressor()

    def _file(self, pack_id: bytes, blob_id: bytes) -> BinaryIO:
        f = self._files.get(pack_id)
        if f is not None:
            self._files.move_to_end(pack_id)
            return f
        try:
            f = open(self.view.pack_path(pack_id), "rb")
        except FileNotFoundError:
            raise BlobFault("pack-missing", blob_id, pack_id, f"pack {pack_id.hex()[:16]} is missing") from None
        self._files[pack_id] = f
        if len(self._files) > MAX_OPEN:
            self._files.popitem(last=False)[1].close()
        return f

    def read(self, blob_id: bytes) -> bytes:
        """The checked plain bytes of a blob; raises BlobFault (or OSError if unreadable)."""
        cached = self._cache.get(blob_id)
        if cached is not None:
            self._cache.move_to_end(blob_id)
            return cached
        loc = self.view.location(blob_id)
        if loc is None:
            raise BlobFault("chunk-missing", blob_id, None, f"blob {blob_id.hex()[:16]} is not in the index")
        pack_id, _btype, codec, offset, slen, plen, inner = loc
        known = self.view.bad.get(blob_id)
        if known is not None and known.kind in ("pack-missing", "chunk-outside", "chunk-corrupt",
                                                "chunk-truncated"):
            raise BlobFault(known.kind, blob_id, pack_id, known.message)
        f = self._file(pack_id, blob_id)
        f.seek(offset)
        payload = f.read(slen)
        where = f"blob {blob_id.hex()[:16]} in pack {pack_id.hex()[:16]}"
        if len(payload) != slen:
            raise BlobFault("chunk-truncated", blob_id, pack_id, f"{where} is truncated")
        try:
            frame = payload if codec == CODEC_RAW else self._dctx.decompress(payload)
        except zstandard.ZstdError:
            raise BlobFault("chunk-corrupt", blob_id, pack_id, f"{where} does not decompress") from None
        plain = frame[inner:inner + plen]
        if blake3.blake3(plain).digest() != blob_id:
            raise BlobFault("chunk-corrupt", blob_id, pack_id, f"{where} does not match its hash")
        self._remember(blob_id, plain)
        return plain

    def _remember(self, blob_id: bytes, plain: bytes) -> None:
        if len(plain) > self._cache_limit // 4:
            return
        self._cache[blob_id] = plain
        self._cache_bytes += len(plain)
        while self._cache_bytes > self._cache_limit:
            self._cache_bytes -= len(self._cache.popitem(last=False)[1])

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()
        self._cache.clear()
        self._cache_bytes = 0

    def __enter__(self) -> "TreeReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
