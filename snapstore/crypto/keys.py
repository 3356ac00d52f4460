"""Key files: the master key wrapped once per passphrase, in ``keys/<id>`` of the repository.

A key file is plain msgpack -- ``{"v": 1, "kdf": {"name": "scrypt", "salt", "n", "r", "p"},
"created", "host", "user", "wrapped"}`` -- where ``wrapped`` is the 64-byte master key
sealed with AES-256-GCM under the scrypt-derived key (random 12-byte nonce before it; the
derived key is used once, its salt being fresh), with the repository id as associated data.
A key file is named by the first 128 bits of the BLAKE3 of its bytes, as packs, index
files and manifests are by theirs: a changed byte anywhere in it (``wrapped`` included,
which no passphrase could tell from a wrong one) is reported as damage naming the file.
Changing a passphrase writes a new key file before removing the old one, so a crash never
leaves a repository without a key.  Opening tries every key file: a repository has few.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import blake3
import msgpack

from ..errors import IntegrityError, UsageError, WrongKey
from ..storage.base import ObjectNotFound
from . import kdf
from .cipher import MasterKey

if TYPE_CHECKING:
    from ..storage import Storage

PREFIX = "keys/"


@dataclass(frozen=True)
class KeyInfo:
    """What ``key list`` shows of a key file (never anything secret)."""

    key_id: str
    created: float
    host: str
    user: str
    cost: dict
    damage: str = ""  # why the file is unreadable (list_keys(strict=False)); nothing else is then known


def _aad(repo_id: str) -> bytes:
    return b"snapstore key " + repo_id.encode()


def _whoami() -> str:
    import getpass  # only a new key file records its user (and host): not imported by every command

    try:
        return getpass.getuser()
    except Exception:  # no passwd entry for this uid (containers)
        return str(os.getuid())


def add_key(storage: "Storage", repo_id: str, master: MasterKey, passphrase: str | bytes,
            cost: dict | None = None) -> str:
    """Wrap ``master`` under ``passphrase`` in a new key file; returns its id."""
    cost = dict(cost or kdf.COST)
    salt = os.urandom(16)
    nonce = os.urandom(12)
    import socket

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    wrapped = nonce + AESGCM(kdf.derive_key(passphrase, salt, **cost)).encrypt(nonce, master.to_bytes(), _aad(repo_id))
    doc = {"v": 1, "kdf": {"name": "scrypt", "salt": salt, **cost}, "created": time.time(),
           "host": socket.gethostname(), "user": _whoami(), "wrapped": wrapped}
    data = msgpack.packb(doc)
    key_id = _name(data)
    if not storage.put(PREFIX + key_id, data, create_only=True):
        raise IntegrityError(f"key file {PREFIX}{key_id} exists already")  # a fresh salt and nonce: never
    return key_id


def _name(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()[:32]


def _decode(storage: "Storage", key_id: str) -> dict:
    where = f"key file {PREFIX}{key_id}"
    data = storage.get(PREFIX + key_id)
    if _name(data) != key_id:
        raise IntegrityError(f"{where} is damaged: its bytes do not match its name")
    try:
        doc = msgpack.unpackb(data)
        kdf_doc = doc["kdf"]
        salt, wrapped = kdf_doc["salt"], doc["wrapped"]
        if kdf_doc.get("name") != "scrypt" or doc.get("v") != 1 or not isinstance(salt, bytes) \
                or not isinstance(wrapped, bytes) or len(wrapped) != 12 + 64 + 16:
            raise ValueError("unknown key format")
    except (ValueError, KeyError, TypeError, msgpack.UnpackException) as exc:
        raise IntegrityError(f"{where} is unreadable: {exc}") from None
    doc["cost"] = kdf.check_cost(kdf_doc, salt, where)
    return doc


def key_ids(storage: "Storage") -> list[str]:
    return sorted(info.name[len(PREFIX):] for info in storage.list(PREFIX))


def list_keys(storage: "Storage", *, strict: bool = True) -> list[KeyInfo]:
    """Every key file's public facts; a damaged one raises IntegrityError, or with
    ``strict=False`` is listed with its ``damage`` (so ``key list`` shows what to remove)."""
    out = []
    for key_id in key_ids(storage):
        try:
            doc = _decode(storage, key_id)
        except ObjectNotFound:  # removed since it was listed
            continue
        except IntegrityError as exc:
            if strict:
                raise
            out.append(KeyInfo(key_id, 0.0, "", "", {}, damage=str(exc)))
            continue
        out.append(KeyInfo(key_id, float(doc.get("created") or 0), str(doc.get("host", "")),
                           str(doc.get("user", "")), doc["cost"]))
    return out


def open_master(storage: "Storage", repo_id: str, passphrase: str | bytes) -> tuple[MasterKey, str]:
    """The master key and the id of the key file ``passphrase`` opens; ``WrongKey`` if none
    does, IntegrityError naming the damaged key files if none does and some are damaged
    (the passphrase may well be the one of a damaged file)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    ids = key_ids(storage)
    if not ids:
        raise IntegrityError(f"{storage.location} is encrypted but holds no key file")
    damaged = []
    for key_id in ids:
        try:
            doc = _decode(storage, key_id)
        except ObjectNotFound:  # removed since it was listed
            continue
        except IntegrityError as exc:
            damaged.append(str(exc))
            continue
        derived = kdf.derive_key(passphrase, doc["kdf"]["salt"], **doc["cost"])
        wrapped = doc["wrapped"]
        try:
            raw = AESGCM(derived).decrypt(wrapped[:12], wrapped[12:], _aad(repo_id))
        except InvalidTag:
            continue
        return MasterKey.from_bytes(raw), key_id
    if damaged:
        intact = "no intact key file opens with this passphrase, and " if len(damaged) < len(ids) else ""
        raise IntegrityError(intact + "; ".join(damaged))
    raise WrongKey(f"wrong passphrase for {storage.location}")


def remove_key(storage: "Storage", key_id: str, current: str | None) -> str:
    """Remove the key file ``key_id`` (or the one it is a unique prefix of) and return its full id;
    the last one, and the one in use, are refused (the repository would become unreadable,
    or this process would have just locked itself out)."""
    ids = key_ids(storage)
    matches = [k for k in ids if k.startswith(key_id.lower())] if key_id else []
    if not matches:
        raise UsageError(f"no key {key_id!r} in {storage.location}")
    if len(matches) > 1:
        raise UsageError(f"key id {key_id!r} is ambiguous: give more of it")
    if len(ids) == 1:
        raise UsageError("refusing to remove the repository's last key: nothing could open it again")
    if matches[0] == current:
        raise UsageError("refusing to remove the key this command was opened with; "
                         "open the repository with another key's passphrase to remove it")
    storage.delete(PREFIX + matches[0])
    return matches[0]
