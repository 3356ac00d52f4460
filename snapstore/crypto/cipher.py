"""Sealing stored objects and naming blobs, with or without encryption.

A ``Cipher`` is what the repository layer asks to (1) name a blob, (2) seal an
object before it is stored and (3) open it after it is read.  ``PLAIN`` (format v1)
names blobs by their unkeyed BLAKE3 and stores bytes as they are.  An encrypted
repository (format v2) names blobs by BLAKE3 keyed with a secret id key, so equal
ids reveal nothing to whoever lacks the key, and seals every object with
AES-256-GCM (measured faster than ChaCha20-Poly1305 here: benchmarks/bench_cipher.py).

Nonces never repeat because no key seals twice: each sealed object starts with 16
fresh random bytes, and its key is BLAKE3 keyed with the data key over them; the
nonce is then a constant.  Two objects share a key only if two 128-bit random
values collide (about 2^-64 after 2^32 objects, where a single AES-GCM key with
random 96-bit nonces must stop).  The associated data names the kind of object
(payload, trailer, index, snapshot, key), so one kind cannot be passed off as
another.  Overhead: 32 bytes per object.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import blake3
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import IntegrityError

SALT = 16
TAG = 16
NONCE = bytes(12)
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
        self.overhead = SALT + TAG if key else 0
        self.id_key = key.id_key if key else None  # for worker processes that hash pages
        self.empty_id = self.blob_id(b"")

    def blob_id(self, data) -> bytes:
        if self.id_key is None:
            return blake3.blake3(data).digest()
        return blake3.blake3(data, key=self.id_key).digest()

    def seal(self, data, kind: bytes) -> bytes:
        if self.key is None:
            return data
        salt = os.urandom(SALT)
        return salt + AESGCM(self._subkey(salt)).encrypt(NONCE, data, kind)

    def open(self, data, kind: bytes, where: str):
        """The plain bytes of a sealed object; ``AuthenticationFailed`` naming ``where`` if it does not open."""
        if self.key is None:
            return data
        if len(data) < SALT + TAG:
            raise AuthenticationFailed(f"{where} is too short to be sealed ({len(data)} bytes)")
        salt = bytes(data[:SALT])
        try:
            return AESGCM(self._subkey(salt)).decrypt(NONCE, data[SALT:], kind)
        except InvalidTag:
            raise AuthenticationFailed(f"{where} fails authentication: it was altered, or sealed "
                                       "with another key") from None

    def _subkey(self, salt: bytes) -> bytes:
        return blake3.blake3(salt, key=self.key.data_key).digest()


def blob_hasher(id_key: bytes | None):
    """A fast ``data -> id`` function for worker processes that only know the id key."""
    if id_key is None:
        return lambda data: blake3.blake3(data).digest()
    return lambda data: blake3.blake3(data, key=id_key).digest()


PLAIN = Cipher(None)
