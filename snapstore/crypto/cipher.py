"""Sealing stored objects and naming blobs, with or without encryption.

A ``Cipher`` is what the repository layer asks to (1) name a blob, (2) seal an
object before it is stored and (3) open it after it is read.  ``PLAIN`` (format v1)
names blobs by their unkeyed BLAKE3 and stores bytes as they are.  An encrypted
repository (format v2) names blobs by BLAKE3 keyed with a secret id key, so equal
ids reveal nothing to whoever lacks the key, and seals every object with
AES-256-GCM (measured faster than ChaCha20-Poly1305 here: benchmarks/bench_cipher.py).

Nonces never repeat: a process seals with a *stream* -- 12 fresh random bytes (the
stream salt), a key that is BLAKE3 keyed with the data key over them, and a counter
that is the nonce.  A sealed object is ``salt || counter (u32) || ciphertext || tag``.
Within a stream every counter is used once (a stream ends after 2^32 objects, and a
forked child never continues its parent's: it starts its own); two streams share a
key only if two random 96-bit salts collide, and a process starts a handful.  A
reader derives a stream's key once and keeps it, so a restore pays the derivation
per backup that wrote the data, not per payload.  The associated data names the
kind of object (payload, trailer, index, snapshot), so one kind cannot be passed off
as another.  Overhead: 32 bytes per object.
"""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

from typing import TYPE_CHECKING

import blake3

from ..errors import IntegrityError

if TYPE_CHECKING:  # imported when a repository is encrypted: plaintext commands start faster
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SALT = 12  # stream salt
COUNTER = 4
HEADER = SALT + COUNTER
TAG = 16
STREAM_OBJECTS = 2 ** 32
KEPT_STREAMS = 256  # stream keys a reader keeps
SCHEME = "aes-256-gcm/blake3-keyed"

# kinds of sealed objects: the associated data of each
PAYLOAD = b"snapstore payload"
TRAILER = b"snapstore trailer"
INDEX = b"snapstore index"
SNAPSHOT = b"snapstore snapshot"


class AuthenticationFailed(IntegrityError):
    """A sealed object that does not open: altered, truncated, or sealed with another key."""


@dataclass(frozen=True)
class MasterKey:
    """The two secrets of an encrypted repository, wrapped in its key files."""

    data_key: bytes  # seals objects (each with its own derived key)
    id_key: bytes  # keys BLAKE3 blob ids

    @classmethod
    def generate(cls) -> "MasterKey":
        return cls(os.urandom(32), os.urandom(32))

    def to_bytes(self) -> bytes:
        return self.data_key + self.id_key

    @classmethod
    def from_bytes(cls, raw: bytes) -> "MasterKey":
        if len(raw) != 64:
            raise IntegrityError("a repository master key must be 64 bytes")
        return cls(raw[:32], raw[32:])


class Cipher:
    """Seals and names for one repository; ``Cipher(None)`` is the plaintext format."""

    def __init__(self, key: MasterKey | None):
        self.key = key
        self.encrypted = key is not None
        self.overhead = HEADER + TAG if key else 0
        self.id_key = key.id_key if key else None  # for worker processes that hash pages
        self.empty_id = self.blob_id(b"")
        self._stream: tuple[int, bytes, AESGCM, "itertools.count"] | None = None  # pid, salt, aead, counter
        self._readers: dict[bytes, AESGCM] = {}

    def blob_id(self, data) -> bytes:
        if self.id_key is None:
            return blake3.blake3(data).digest()
        return blake3.blake3(data, key=self.id_key).digest()

    def seal(self, data, kind: bytes) -> bytes:
        if self.key is None:
            return data
        stream = self._stream
        if stream is None or stream[0] != os.getpid():
            stream = self._new_stream()
        n = next(stream[3])  # atomic under the GIL: no two seals get one counter
        if n >= STREAM_OBJECTS:
            stream = self._new_stream()
            n = next(stream[3])
        counter = n.to_bytes(COUNTER, "little")
        return stream[1] + counter + stream[2].encrypt(_nonce(counter), data, kind)

    def _new_stream(self):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        salt = os.urandom(SALT)
        self._stream = (os.getpid(), salt, AESGCM(self._subkey(salt)), itertools.count())
        return self._stream

    def open(self, data, kind: bytes, where: str):
        """The plain bytes of a sealed object; ``AuthenticationFailed`` naming ``where`` if it does not open."""
        if self.key is None:
            return data
        if len(data) < HEADER + TAG:
            raise AuthenticationFailed(f"{where} is too short to be sealed ({len(data)} bytes)")
        salt = bytes(data[:SALT])
        from cryptography.exceptions import InvalidTag

        aead = self._readers.get(salt)
        if aead is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            if len(self._readers) >= KEPT_STREAMS:
                self._readers.clear()
            aead = self._readers[salt] = AESGCM(self._subkey(salt))
        try:
            return aead.decrypt(_nonce(bytes(data[SALT:HEADER])), data[HEADER:], kind)
        except InvalidTag:
            raise AuthenticationFailed(f"{where} fails authentication: it was altered, or sealed "
                                       "with another key") from None

    def _subkey(self, salt: bytes) -> bytes:
        return blake3.blake3(salt, key=self.key.data_key).digest()


def _nonce(counter: bytes) -> bytes:
    return counter + bytes(12 - COUNTER)


PLAIN = Cipher(None)
