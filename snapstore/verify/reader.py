"""Reading single blobs (chunk-list trees) through verify's view of the repository.

Like ``BlobReader`` every blob is decompressed and re-hashed, but a failure is
a ``BlobFault`` naming the blob, its pack and the kind of damage, so the walk
can attribute it.  Tree blobs read while walking are kept in a small cache:
successive snapshots share their base lists, and the full check re-reads them
to re-derive digests.
"""
from __future__ import annotations

from collections import OrderedDict

import zstandard

from ..repository.blob import BlobDamage, check_blob, open_payload
from ..storage import ObjectNotFound
from .faults import BlobFault
from .view import RepoView

CACHE_BYTES = 64 * 1024 * 1024


class TreeReader:
    def __init__(self, view: RepoView, cache_bytes: int = CACHE_BYTES):
        self.view = view
        self._cache: OrderedDict[bytes, bytes] = OrderedDict()
        self._cache_bytes = 0
        self._cache_limit = cache_bytes
        self._dctx = zstandard.ZstdDecompressor()

    def read(self, blob_id: bytes) -> bytes:
        """The checked plain bytes of a blob; raises BlobFault (or StorageError if unreadable)."""
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
        try:
            payload = self.view.repo.read_pack_range(pack_id, offset, slen)
        except ObjectNotFound:
            raise BlobFault("pack-missing", blob_id, pack_id, f"pack {pack_id.hex()[:16]} is missing") from None
        where = f"blob {blob_id.hex()[:16]} in pack {pack_id.hex()[:16]}"
        if len(payload) != slen:
            raise BlobFault("chunk-truncated", blob_id, pack_id, f"{where} is truncated")
        try:
            frame = open_payload(self.view.repo.cipher, codec, payload, self._dctx, where)
        except BlobDamage as exc:
            raise BlobFault(exc.kind, blob_id, pack_id, exc.message) from None
        plain = check_blob(self.view.repo.cipher, blob_id, frame, inner, plen)
        if plain is None:
            raise BlobFault("chunk-corrupt", blob_id, pack_id, f"{where} does not match its hash")
        plain = bytes(plain)
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
        self._cache.clear()
        self._cache_bytes = 0

    def __enter__(self) -> "TreeReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
