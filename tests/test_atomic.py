"""Temp names that say who made them, and the removal of what killed processes left."""
from __future__ import annotations

import os
from pathlib import Path

from helpers import dead_pid, temp_name_of as named_for
from snapstore.atomic import AtomicFile, is_stale_temp, remove_stale_temps, temp_dir, temp_name


def test_a_temp_name_of_this_process_is_never_stale():
    name = temp_name("pack")
    assert name.startswith("pack.tmp-") and f".{os.getpid()}-" in name
    assert not is_stale_temp(name)


def test_a_temp_name_of_a_gone_process_is_stale():
    assert is_stale_temp(named_for(dead_pid(), "pack"))


def test_names_of_other_hosts_and_other_files_are_left_alone():
    pid = dead_pid()
    assert not is_stale_temp(f"pack.tmp-some-other-host.{pid}-0a1b2c3d")
    assert not is_stale_temp("pack.tmp-0a1b2c3d4e5f")  # no owner in the name
    assert not is_stale_temp(f"notes.{pid}.txt")


def test_remove_stale_temps_takes_only_the_leftovers_of_gone_processes(tmp_path):
    pid = dead_pid()
    stale_file = tmp_path / named_for(pid, "pack")
    stale_file.write_bytes(b"half a pack")
    stale_dir = tmp_path / named_for(pid, ".export")
    (stale_dir / "database").mkdir(parents=True)
    (stale_dir / "database" / "sqlite.db").write_bytes(b"x" * 1000)
    live = tmp_path / temp_name("pack")
    live.write_bytes(b"in progress")
    foreign = tmp_path / f"pack.tmp-some-other-host.{pid}-0a1b2c3d"
    foreign.write_bytes(b"not ours to judge")
    user_file = tmp_path / "report.txt"
    user_file.write_text("keep")
    removed = remove_stale_temps(tmp_path)
    assert sorted(removed) == sorted([stale_file, stale_dir])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, foreign.name, user_file.name])


def test_remove_stale_temps_of_a_missing_directory_is_nothing(tmp_path):
    assert remove_stale_temps(tmp_path / "nope") == []


def test_atomic_file_names_its_temp_for_this_process(tmp_path):
    f = AtomicFile(tmp_path / "config")
    assert f.tmp_path.name.startswith("config.tmp-") and not is_stale_temp(f.tmp_path.name)
    f.write(b"data")
    f.commit()
    assert (tmp_path / "config").read_bytes() == b"data"
    assert [p.name for p in tmp_path.iterdir()] == ["config"]


def test_temp_dir_is_removed_after_use_even_on_error(tmp_path):
    try:
        with temp_dir(tmp_path, "restore") as work:
            assert work.parent == tmp_path and work.name.startswith(".snapstore-restore.tmp-")
            (work / "snapshot.db").write_bytes(b"x")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert list(Path(tmp_path).iterdir()) == []


def test_names_from_another_pid_namespace_of_the_same_host_are_left_alone():
    # Containers sharing the host name and a volume number their processes independently.
    name = named_for(dead_pid(), "pack")
    head, _, tail = name.rpartition(".tmp-")
    owner, _, rest = tail.partition(".")
    host, _, namespace = owner.rpartition("_")
    other = f"{head}.tmp-{host}_{int(namespace) + 1}.{rest}"
    assert is_stale_temp(name) and not is_stale_temp(other)
