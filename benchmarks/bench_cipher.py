"""AES-256-GCM vs ChaCha20-Poly1305 as snapstore seals objects (docs/design.md "Encryption").

Objects are sealed as ``snapstore.crypto.cipher`` does: one stream key (keyed BLAKE3 of a
random salt) and a counter nonce per object; opening derives the key once too.

    .venv/bin/python benchmarks/bench_cipher.py [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import time

import blake3
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

SIZES = {"64 KiB payload": 64 * 1024, "1.5 KiB payload": 1536}


def measure(aead_class, size: int, seconds: float = 0.5) -> dict[str, float]:
    key = os.urandom(32)
    data = os.urandom(size)
    salt = os.urandom(12)
    sealer = aead_class(blake3.blake3(salt, key=key).digest())
    sealed = []
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        nonce = n.to_bytes(12, "little")
        sealed.append((nonce, sealer.encrypt(nonce, data, b"kind")))
        n += 1
    seal = (time.perf_counter() - start) / n
    start = time.perf_counter()
    opener = aead_class(blake3.blake3(salt, key=key).digest())
    for nonce, box in sealed:
        opener.decrypt(nonce, box, b"kind")
    opened = (time.perf_counter() - start) / n
    return {"seal_us": seal * 1e6, "open_us": opened * 1e6,
            "seal_MBps": size / seal / 1e6, "open_MBps": size / opened / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    ciphers = (("AES-256-GCM", AESGCM), ("ChaCha20-Poly1305", ChaCha20Poly1305))
    results: dict = {name: {} for name, _ in ciphers}
    for _ in range(args.rounds):  # interleaved, best of each: the machine is shared
        for label, size in SIZES.items():
            for name, cls in ciphers:
                r = measure(cls, size)
                best = results[name].get(label)
                results[name][label] = r if best is None else {k: (min if k.endswith("_us") else max)(best[k], r[k])
                                                               for k in r}
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'cipher':<20}{'object':<18}{'seal MB/s':>10}{'open MB/s':>10}{'seal µs':>9}{'open µs':>9}")
    for name, rows in results.items():
        for label, r in rows.items():
            print(f"{name:<20}{label:<18}{r['seal_MBps']:>10.0f}{r['open_MBps']:>10.0f}"
                  f"{r['seal_us']:>9.1f}{r['open_us']:>9.1f}")


if __name__ == "__main__":
    main()
