"""Encrypted backup folders: every file sealed with AES-256-GCM, the key derived by scrypt.

Layout: ``encryption.json`` (plain JSON: format, cipher, scrypt salt and cost, and a
key check) at the folder's root; every other file ``F`` becomes ``F.enc`` and the
plaintext is removed.  Each ``.enc`` file is::

    "SNAPENC1"  8-byte random nonce prefix  segment 0  segment 1 ...

where a segment is up to 1 MiB of plaintext sealed with AES-256-GCM (16-byte tag),
nonce = prefix || segment number (u32 BE), and the associated data binds the
file's relative path, the segment number and whether it is the last segment: a
renamed, reordered, truncated or altered file fails authentication instead of
decrypting to something else.  Encrypted files are written atomically (temp file,
fsync, rename) before their plaintext is unlinked, so a crash leaves either the
plaintext or its ciphertext, and running the encryption again finishes the job.
"""
from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path
from typing import Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..atomic import AtomicFile, fsync_dir
from ..crypto import kdf
from ..crypto.kdf import derive_key
from ..errors import IntegrityError, UsageError, WrongKey
from ..folder.layout import ENCRYPTION_HEADER, folder_files

HEADER = ENCRYPTION_HEADER
FORMAT = "snapstore-encrypted-folder"
SUFFIX = ".enc"
MAGIC = b"SNAPENC1"
PREFIX_LEN = 8
SEGMENT = 1 << 20
TAG = 16
SCRYPT_COST = kdf.COST  # the same derivation, cost and limits as a repository's key files
KEY_CHECK_PLAIN = b"snapstore encrypted backup folder"


def is_encrypted(folder: str | os.PathLike) -> bool:
    return (Path(folder) / HEADER).is_file()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def read_header(folder: Path) -> dict:
    path = folder / HEADER
    try:
        doc = json.loads(path.read_text())
        kdf_doc = doc["kdf"]
        cost = {k: int(kdf_doc[k]) for k in ("n", "r", "p")}
        salt = base64.b64decode(kdf_doc["salt"])
        check = base64.b64decode(doc["key_check"])
    except FileNotFoundError:
        raise UsageError(f"{folder} is not an encrypted backup folder ({HEADER} is missing)") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"{path} is not a valid encryption header: {exc}") from None
    if doc.get("format") != FORMAT or doc.get("cipher") != "AES-256-GCM" or kdf_doc.get("name") != "scrypt":
        raise IntegrityError(f"{path} describes an unknown encryption format")
    cost = kdf.check_cost(cost, salt, str(path))
    return {"salt": salt, "cost": cost, "key_check": check, "version": doc.get("version")}


def _write_header(folder: Path, passphrase: str | bytes) -> bytes:
    salt = secrets.token_bytes(16)
    key = derive_key(passphrase, salt, **SCRYPT_COST)
    nonce = secrets.token_bytes(12)
    check = nonce + AESGCM(key).encrypt(nonce, KEY_CHECK_PLAIN, FORMAT.encode())
    doc = {"format": FORMAT, "version": 1, "cipher": "AES-256-GCM", "segment_size": SEGMENT,
           "kdf": {"name": "scrypt", "salt": _b64(salt), **SCRYPT_COST}, "key_check": _b64(check),
           "files": f"every file F of the folder is stored as F{SUFFIX}"}
    with AtomicFile(folder / HEADER, overwrite=True) as out:
        out.write((json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())
    return key


def open_key(folder: Path, passphrase: str | bytes) -> bytes:
    """The folder's file key; ``WrongKey`` when the passphrase does not open it."""
    header = read_header(folder)
    key = derive_key(passphrase, header["salt"], **header["cost"])
    check = header["key_check"]
    try:
        AESGCM(key).decrypt(check[:12], check[12:], FORMAT.encode())
    except InvalidTag:
        raise WrongKey(f"wrong encryption key for {folder}") from None
    return key


def _aad(rel: str, counter: int, final: bool) -> bytes:
    return MAGIC + rel.encode() + b"\0" + counter.to_bytes(4, "big") + (b"\1" if final else b"\0")


def _segments(f) -> Iterator[tuple[int, bytes, bool]]:
    """(number, block, is_last) over blocks of SEGMENT bytes; an empty file is one empty last block."""
    counter, block = 0, f.read(SEGMENT)
    while True:
        nxt = f.read(SEGMENT) if len(block) == SEGMENT else b""
        yield counter, block, not nxt
        if not nxt:
            return
        counter, block = counter + 1, nxt


def encrypt_file(key: bytes, folder: Path, rel: str) -> None:
    src = folder / rel
    aead = AESGCM(key)
    prefix = secrets.token_bytes(PREFIX_LEN)
    with open(src, "rb") as fin, AtomicFile(folder / (rel + SUFFIX), overwrite=True) as out:
        out.write(MAGIC + prefix)
        for counter, block, last in _segments(fin):
            out.write(aead.encrypt(prefix + counter.to_bytes(4, "big"), block, _aad(rel, counter, last)))
    os.unlink(src)


def decrypt_file(key: bytes, src: Path, rel: str, dest: Path) -> None:
    aead = AESGCM(key)
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
        head = fin.read(len(MAGIC) + PREFIX_LEN)
        if len(head) < len(MAGIC) + PREFIX_LEN or not head.startswith(MAGIC):
            raise IntegrityError(f"{rel}{SUFFIX} is not a snapstore encrypted file")
        prefix = head[len(MAGIC):]
        for counter, block, last in _segments_sealed(fin):
            try:
                fout.write(aead.decrypt(prefix + counter.to_bytes(4, "big"), block, _aad(rel, counter, last)))
            except InvalidTag:
                raise IntegrityError(f"{rel}{SUFFIX} fails authentication: it was altered, truncated "
                                     "or renamed") from None


def _segments_sealed(f) -> Iterator[tuple[int, bytes, bool]]:
    counter, block = 0, f.read(SEGMENT + TAG)
    while True:
        nxt = f.read(SEGMENT + TAG) if len(block) == SEGMENT + TAG else b""
        yield counter, block, not nxt
        if not nxt:
            return
        counter, block = counter + 1, nxt


def _stale_temp(rel: str) -> bool:
    return f"{SUFFIX}.tmp-" in rel or rel.startswith(f"{HEADER}.tmp-")


def plaintext_files(folder: Path) -> list[str]:
    """Files of the folder that are neither ciphertext nor the header."""
    return sorted(rel for rel in folder_files(folder)
                  if rel != HEADER and not rel.endswith(SUFFIX) and not _stale_temp(rel))


def encrypt_backup_files(backup_path: str | os.PathLike, encryption_key: str | bytes) -> list[str]:
    """Encrypt every file of the folder in place (``F`` -> ``F.enc``); returns the files encrypted.

    Resumable: on a folder already (partly) encrypted the same passphrase must be
    given, and only the files still in plaintext are encrypted.
    """
    folder = Path(backup_path)
    if not folder.is_dir():
        raise UsageError(f"backup folder {folder} does not exist")
    for rel in [r for r in folder_files(folder) if _stale_temp(r)]:
        os.unlink(folder / rel)  # an encryption interrupted earlier
    key = open_key(folder, encryption_key) if is_encrypted(folder) else _write_header(folder, encryption_key)
    done = []
    for rel in plaintext_files(folder):
        encrypt_file(key, folder, rel)
        done.append(rel)
    for dirpath, _, _ in os.walk(folder):
        fsync_dir(Path(dirpath))
    return done


def remove_plaintext_sensitive(backup_path: str | os.PathLike) -> dict:
    """Remove every plaintext file whose ciphertext twin exists, and any interrupted temp file.

    Returns ``{"removed": [...], "remaining_plaintext": [...]}``; after
    ``encrypt_backup_files`` both lists are empty.
    """
    folder = Path(backup_path)
    removed = []
    for rel in folder_files(folder):
        if _stale_temp(rel) or (rel != HEADER and not rel.endswith(SUFFIX) and (folder / (rel + SUFFIX)).is_file()):
            os.unlink(folder / rel)
            removed.append(rel)
    return {"removed": sorted(removed), "remaining_plaintext": plaintext_files(folder)}


def decrypt_backup_folder(backup_path: str | os.PathLike, encryption_key: str | bytes,
                          dest: str | os.PathLike) -> list[str]:
    """Decrypt every ``.enc`` file of the folder into ``dest`` (which must be empty); returns the files."""
    folder, dest = Path(backup_path), Path(dest)
    key = open_key(folder, encryption_key)
    out = []
    for rel in sorted(folder_files(folder)):
        if rel.endswith(SUFFIX) and not _stale_temp(rel):
            plain = rel[:-len(SUFFIX)]
            decrypt_file(key, folder / rel, plain, dest / plain)
            out.append(plain)
    if not out:
        raise IntegrityError(f"{folder} holds no encrypted files")
    return out
