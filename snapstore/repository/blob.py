"""Opening a stored payload and checking a blob against its id: the one place that does it.

Restores (``BlobReader``), verify's tree walk (``verify/reader.py``) and verify's
pack pass (``verify/packcheck.py``) all read blobs; each gets its payload its
own way (a reused buffer, a cached range, one big read of a pack), but all of
them open with ``open_payload`` (decrypt, then decompress) and check with
``check_blob``, so a rule about what counts as an intact blob lives here only.
"""
from __future__ import annotations

import zstandard

from ..crypto.cipher import PAYLOAD, AuthenticationFailed, Cipher
from ..errors import IntegrityError
from .pack import CODEC_RAW, CODEC_ZSTD



class BlobDamage(IntegrityError):
    """A blob that cannot be read intact; ``kind`` is verify's name for the damage."""

    def __init__(self, kind: str, message: str):
        self.kind = kind
        super().__init__(message)

    def __reduce__(self):  # raised in forked restore workers and sent back to the parent
        return type(self), (self.kind, self.message)


def open_payload(cipher: Cipher, codec: int, payload, dctx: zstandard.ZstdDecompressor, where: str):
    """The plain bytes of a stored payload: opened (encrypted repositories), then decompressed
    (a raw payload of a plaintext repository is returned as given)."""
    if cipher.encrypted:
        try:
            payload = cipher.open(payload, PAYLOAD, where)
        except AuthenticationFailed as exc:
            raise BlobDamage("chunk-corrupt", exc.message) from None
    if codec == CODEC_RAW:
        return payload
    if codec != CODEC_ZSTD:
        raise BlobDamage("chunk-corrupt", f"{where} has unknown codec {codec}")
    try:
        return dctx.decompress(payload)
    except zstandard.ZstdError:
        pass
    try:  # a frame that does not record its size decompresses only in streaming mode
        return dctx.decompressobj().decompress(payload)
    except zstandard.ZstdError as exc:
        raise BlobDamage("chunk-corrupt", f"{where} does not decompress: {exc}") from None


def check_blob(cipher: Cipher, blob_id: bytes, plain, inner: int, plain_length: int) -> memoryview | None:
    """The blob's bytes, a view into its payload's ``plain`` bytes, or None if they do not hash to ``blob_id``."""
    view = memoryview(plain)[inner:inner + plain_length]
    if len(view) != plain_length or cipher.blob_id(view) != blob_id:
        return None
    return view
