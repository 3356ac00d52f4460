"""Sealing and naming (snapstore/crypto/cipher.py): what opens, what is refused, what ids reveal."""
from __future__ import annotations

import blake3
import pytest

from snapstore.crypto import cipher as cipher_module
from snapstore.crypto.cipher import (HEADER, INDEX, PAYLOAD, PLAIN, SALT, SNAPSHOT, TAG, TRAILER, AuthenticationFailed,
                                     Cipher, MasterKey)
from snapstore.errors import IntegrityError

KINDS = (PAYLOAD, TRAILER, INDEX, SNAPSHOT)


@pytest.fixture
def cipher() -> Cipher:
    return Cipher(MasterKey.generate())


@pytest.mark.parametrize("data", [b"", b"x", b"memory " * 1000, bytes(range(256)) * 300])
@pytest.mark.parametrize("kind", KINDS)
def test_seal_open_round_trip(cipher, data, kind):
    sealed = cipher.seal(data, kind)
    assert len(sealed) == len(data) + cipher.overhead == len(data) + HEADER + TAG == len(data) + 32
    assert cipher.open(sealed, kind, "obj") == data
    assert cipher.open(memoryview(sealed), kind, "obj") == data  # packs are read as views
    if len(data) >= 16:
        assert data[:16] not in sealed  # not stored in the clear


def test_every_changed_byte_fails_authentication(cipher):
    data = b"the agent's knowledge vault: api key sk-123"
    sealed = cipher.seal(data, PAYLOAD)
    for i in range(len(sealed)):
        for flip in (0x01, 0x80):
            tampered = bytearray(sealed)
            tampered[i] ^= flip
            with pytest.raises(AuthenticationFailed, match="pack 1a2b fails authentication"):
                cipher.open(bytes(tampered), PAYLOAD, "pack 1a2b")


def test_truncated_and_extended_objects_are_refused(cipher):
    sealed = cipher.seal(b"some payload bytes", TRAILER)
    for cut in (0, 1, SALT, HEADER, HEADER + TAG - 1):
        with pytest.raises(AuthenticationFailed, match="too short"):
            cipher.open(sealed[:cut], TRAILER, "trailer")
    for bad in (sealed[:-1], sealed + b"\0", sealed[:SALT] + sealed[SALT + 1:]):
        with pytest.raises(AuthenticationFailed, match="fails authentication"):
            cipher.open(bad, TRAILER, "trailer")
    assert issubclass(AuthenticationFailed, IntegrityError)  # verify and the CLI report it as damage


@pytest.mark.parametrize("sealed_as", KINDS)
def test_one_kind_cannot_be_opened_as_another(cipher, sealed_as):
    sealed = cipher.seal(b"{'tables': ...}", sealed_as)
    for kind in KINDS:
        if kind == sealed_as:
            assert cipher.open(sealed, kind, "obj") == b"{'tables': ...}"
        else:
            with pytest.raises(AuthenticationFailed):
                cipher.open(sealed, kind, "obj")


def test_another_key_does_not_open(cipher):
    sealed = cipher.seal(b"secret", SNAPSHOT)
    with pytest.raises(AuthenticationFailed):
        Cipher(MasterKey.generate()).open(sealed, SNAPSHOT, "snapshot")
    same_data_key = Cipher(MasterKey(cipher.key.data_key, bytes(32)))  # the id key plays no part in sealing
    assert same_data_key.open(sealed, SNAPSHOT, "snapshot") == b"secret"


def test_two_seals_of_the_same_data_differ(cipher):
    """One stream per process: the same salt (so the same key), a new counter (nonce) each time."""
    data = b"identical memory row " * 50
    seals = [cipher.seal(data, PAYLOAD) for _ in range(50)]
    assert len(set(seals)) == 50
    assert len({s[:SALT] for s in seals}) == 1
    assert [int.from_bytes(s[SALT:HEADER], "little") for s in seals] == list(range(50))
    assert len({s[HEADER:] for s in seals}) == 50
    assert all(cipher.open(s, PAYLOAD, "obj") == data for s in seals)
    other = Cipher(cipher.key)  # another process or object: another stream, another key
    assert other.seal(data, PAYLOAD)[:SALT] != seals[0][:SALT]
    assert other.open(seals[7], PAYLOAD, "obj") == data


def test_a_stream_ends_before_its_counter_repeats(cipher, monkeypatch):
    monkeypatch.setattr(cipher_module, "STREAM_OBJECTS", 3)
    headers = [cipher.seal(b"x", INDEX)[:HEADER] for _ in range(7)]
    assert len(set(headers)) == 7
    salts = [h[:SALT] for h in headers]
    assert salts[0] == salts[2] != salts[3] == salts[5] != salts[6]
    assert [int.from_bytes(h[SALT:], "little") for h in headers] == [0, 1, 2, 0, 1, 2, 0]


def test_a_forked_child_starts_its_own_stream(cipher):
    """A worker forked after its parent sealed must not reuse the parent's (key, nonce) pairs."""
    import os

    parent = cipher.seal(b"before the fork", PAYLOAD)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one seal, its header to the parent
        try:
            os.write(write, cipher.seal(b"in the child", PAYLOAD)[:HEADER])
        finally:
            os._exit(0)
    os.close(write)
    child = os.read(read, HEADER)
    os.close(read)
    os.waitpid(pid, 0)
    again = cipher.seal(b"after the fork", PAYLOAD)
    assert len(child) == HEADER and child[:SALT] != parent[:SALT]
    assert again[:SALT] == parent[:SALT] and again[SALT:HEADER] == (1).to_bytes(4, "little")


def test_keyed_blob_ids_reveal_nothing_of_equal_content():
    a, b = Cipher(MasterKey.generate()), Cipher(MasterKey.generate())
    for data in (b"", b"known file", b"x" * 100000):
        plain_id = blake3.blake3(data).digest()
        assert PLAIN.blob_id(data) == plain_id
        assert a.blob_id(data) != plain_id and b.blob_id(data) != plain_id
        assert a.blob_id(data) != b.blob_id(data)
        assert a.blob_id(data) == a.blob_id(bytearray(data)) == blake3.blake3(data, key=a.key.id_key).digest()
        assert len(a.blob_id(data)) == 32
    assert a.blob_id(b"one") != a.blob_id(b"two")
    assert a.empty_id == a.blob_id(b"") != PLAIN.empty_id == blake3.blake3(b"").digest()


def test_blob_ids_depend_on_the_id_key_only():
    key = MasterKey.generate()
    other_data_key = Cipher(MasterKey(bytes(32), key.id_key))
    assert Cipher(key).blob_id(b"row") == other_data_key.blob_id(b"row")
    assert Cipher(key).blob_id(b"row") != Cipher(MasterKey(key.data_key, bytes(32))).blob_id(b"row")


def test_plain_cipher_stores_bytes_as_they_are():
    assert not PLAIN.encrypted and PLAIN.overhead == 0
    assert PLAIN.seal(b"abc", PAYLOAD) == b"abc"
    assert PLAIN.open(b"abc", INDEX, "obj") == b"abc"


def test_master_key_bytes():
    key = MasterKey.generate()
    assert key.data_key != key.id_key and len(key.to_bytes()) == 64
    assert MasterKey.from_bytes(key.to_bytes()) == key
    for bad in (b"", key.to_bytes()[:63], key.to_bytes() + b"\0"):
        with pytest.raises(IntegrityError, match="64 bytes"):
            MasterKey.from_bytes(bad)
    assert MasterKey.generate() != key
