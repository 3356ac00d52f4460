"""Passphrase -> key with scrypt: one derivation for repository keys and encrypted folders.

The cost is stored beside every salt, so it can be raised later without breaking old
keys; ``LIMITS`` refuses a stored cost that would make opening take minutes or
gigabytes (a tampered key file must not be a denial of service).
"""
from __future__ import annotations

from ..errors import IntegrityError, UsageError

COST = {"n": 2 ** 15, "r": 8, "p": 1}  # ~0.1 s and 32 MiB on the reference machine
LIMITS = {"n": 2 ** 20, "r": 32, "p": 16}


def passphrase_bytes(passphrase: str | bytes) -> bytes:
    if isinstance(passphrase, str):
        passphrase = passphrase.encode()
    if not isinstance(passphrase, bytes) or not passphrase:
        raise UsageError("the passphrase must be a non-empty string or bytes")
    return passphrase


def check_cost(cost: dict, salt: bytes, where: str) -> dict[str, int]:
    """The n, r, p of a stored cost; IntegrityError when they are missing or unreasonable."""
    try:
        cost = {k: int(cost[k]) for k in ("n", "r", "p")}
    except (KeyError, TypeError, ValueError):
        raise IntegrityError(f"{where} has no valid key-derivation parameters") from None
    if any(cost[k] > LIMITS[k] or cost[k] < 1 for k in cost) or len(salt) < 16:
        raise IntegrityError(f"{where} asks for unreasonable key-derivation parameters")
    return cost


def derive_key(passphrase: str | bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt  # only when a key is opened or made

    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase_bytes(passphrase))
