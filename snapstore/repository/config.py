"""The repository's ``config`` file: format version, identity, chunking parameters.

Written once at ``init``; a reader refuses a version newer than it knows so
that an old snapstore never misreads a new repository.  Version 2 is an encrypted
repository (``encryption`` names the scheme); unencrypted ones stay version 1, so
older snapstores keep reading them.  The config holds nothing secret.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field

import msgpack

from ..errors import RepositoryNotFound, UnsupportedFormat

FORMAT_VERSION = 2  # the newest this snapstore reads and writes
PLAIN_VERSION = 1


@dataclass(frozen=True)
class RepoConfig:
    version: int = PLAIN_VERSION
    repo_id: str = field(default_factory=lambda: os.urandom(16).hex())
    created: float = field(default_factory=time.time)
    pack_size: int = 32 * 1024 * 1024
    cdc_min: int = 4 * 1024
    cdc_avg: int = 16 * 1024
    cdc_max: int = 64 * 1024
    compression_level: int = 3
    encryption: str | None = None  # crypto/cipher.py SCHEME in version 2

    def encode(self) -> bytes:
        return msgpack.packb(asdict(self))

    @classmethod
    def decode(cls, data: bytes, where: str) -> "RepoConfig":
        """``where`` names the repository in messages."""
        try:
            doc = msgpack.unpackb(data)
        except Exception as exc:
            raise RepositoryNotFound(f"{where}: config is not a snapstore config: {exc}") from None
        version = doc.get("version") if isinstance(doc, dict) else None
        if not isinstance(version, int):
            raise RepositoryNotFound(f"{where}: config is not a snapstore config")
        if version > FORMAT_VERSION:
            raise UnsupportedFormat(
                f"repository format version {version} is newer than this snapstore supports "
                f"({FORMAT_VERSION}); upgrade snapstore")
        known = {k: doc[k] for k in cls.__dataclass_fields__ if k in doc}
        config = cls(**known)
        if (version >= 2) != bool(config.encryption):
            raise RepositoryNotFound(f"{where}: config version {version} does not match its encryption")
        return config

    @property
    def encrypted(self) -> bool:
        return bool(self.encryption)
