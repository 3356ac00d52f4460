"""FollowingMD5: the MD5 of a file taken while it is still being written."""
from __future__ import annotations

import hashlib
import os
import random
import threading
import time

import pytest

from snapstore.errors import IntegrityError
from snapstore.folder.checksums import FollowingMD5


def test_md5_of_a_file_written_in_ranges_out_of_order(tmp_path):
    path = tmp_path / "f"
    data = os.urandom(5 << 20) + b"end"
    md5 = FollowingMD5(path)  # before the file exists, as when materialising
    with open(path, "wb") as f:
        f.truncate(len(data))
    cuts = sorted(random.Random(7).sample(range(1, len(data)), 40))
    ranges = list(zip([0] + cuts, cuts + [len(data)]))
    random.Random(8).shuffle(ranges)
    landed, prefix = {}, 0
    with open(path, "r+b") as f:
        for start, end in ranges:
            os.pwrite(f.fileno(), data[start:end], start)
            landed[start] = end
            while prefix in landed:
                prefix = landed.pop(prefix)
            md5.advance(prefix)
    assert md5.finish(len(data)) == hashlib.md5(data).hexdigest()


def test_md5_of_a_growing_file_defaults_to_its_final_size(tmp_path):
    path = tmp_path / "f"
    md5 = FollowingMD5(path)
    chunks = [os.urandom(n) for n in (1, 4096, 3 << 20, 7)]
    with open(path, "wb") as f:
        for chunk in chunks:
            f.write(chunk)
            f.flush()
            md5.advance(f.tell())
    assert md5.finish() == hashlib.md5(b"".join(chunks)).hexdigest()


def test_an_empty_file(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"")
    assert FollowingMD5(path).finish() == hashlib.md5(b"").hexdigest()


def test_a_file_shorter_than_announced_is_an_error(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    md5 = FollowingMD5(path)
    with pytest.raises(IntegrityError, match="shorter"):
        md5.finish(10)


def test_close_stops_without_a_result(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(os.urandom(1 << 20))
    md5 = FollowingMD5(path)
    md5.advance(1 << 19)
    md5.close()
    assert not md5._thread.is_alive()


def test_bytes_beyond_the_announced_prefix_are_never_read(tmp_path):
    # A pre-sized file (as materialising makes) whose tail is still zeros when the first
    # prefix is announced: a read-ahead would hash those zeros.
    path = tmp_path / "f"
    data = os.urandom(1 << 20)
    with open(path, "wb") as f:
        f.truncate(len(data))
    md5 = FollowingMD5(path)
    with open(path, "r+b") as f:
        os.pwrite(f.fileno(), data[:100], 0)
        md5.advance(100)
        time.sleep(0.2)  # let the thread hash the 100 bytes before the rest lands (ordering, not timing)
        os.pwrite(f.fileno(), data[100:], 100)
    assert md5.finish(len(data)) == hashlib.md5(data).hexdigest()


def test_with_block_stops_the_thread_when_the_writer_fails(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(os.urandom(1 << 20))
    with pytest.raises(RuntimeError):
        with FollowingMD5(path) as md5:
            md5.advance(1 << 19)
            raise RuntimeError("writer failed")
    assert not any(t.name == "md5 f" for t in threading.enumerate())
