"""Export: materialise a snapshot as the documented backup folder (SPEC.md §4).

The folder is assembled in a hidden sibling directory and renamed into place at
the end, so a failed or interrupted export never leaves a half-written folder
under the requested name.  Every value in it derives from the snapshot (times
included), so exporting one snapshot twice gives byte-identical files.
"""
from __future__ import annotations

import hashlib
import io
import os
import queue
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import yaml
import zstandard

from .. import __version__
from ..atomic import make_parents, remove_made, remove_stale_temps, temp_name
from ..backup import CONFIG_PATH, DB_PATH
from ..errors import DiskFull, UsageError, disk_full
from ..extract import materialize, write_file
from ..folder.checksums import FollowingMD5, file_md5
from ..folder.layout import (CHECKSUMS, DUMP, FOLDER_VERSION, METADATA, REPORT, SCHEMA_INFO, ZST, md5_line,
                             write_json)
from ..manifest import Selection, Snapshot, resolve_snapshot
from ..memory_types import CONVERSATION_TABLE, memory_file_name, memory_tables
from ..repository import Repository
from ..sanitize import sanitize_file
from .report import render_report
from .vault import VaultRedaction, parse_level, redact_copy_rows, redact_sqlite
from ..sources.postgres.layout import INFO_PATH, PG_DIR, TableInfo
from ..sources.postgres.reader import open_pg_capture
from .postgres_content import pg_schema_info, table_label, write_pg_dump, write_pg_memory_json
from .sqlite_content import integrity_check, open_readonly, schema_info, write_memory_json, write_sql_dump

COMPRESS_MIN_BYTES = 1 << 20


@dataclass
class ExportResult:
    path: Path
    snapshot_id: str
    file_count: int
    size_bytes: int
    checksums: dict[str, str]
    verification: dict
    duration_s: float
    sanitized: list[str] = field(default_factory=list)
    vault_redaction: VaultRedaction | None = None

    def as_dict(self) -> dict:
        return {"backup_path": str(self.path), "snapshot_id": self.snapshot_id, "file_count": self.file_count,
                "size_bytes": self.size_bytes, "size_mb": round(self.size_bytes / (1 << 20), 2),
                "verification": self.verification, "sanitized": self.sanitized,
                "vault_redaction": self.vault_redaction.as_dict() if self.vault_redaction else None,
                "duration_s": round(self.duration_s, 3)}


def _prepare_destination(dest: Path) -> tuple[Path, list[Path]]:
    """The hidden staging folder beside ``dest``, and the parent folders made for it (deepest
    first), which a failed export removes again."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(f"export destination {dest} already exists and is not an empty directory")
    parent = dest.parent if str(dest.parent) else Path(".")
    made = make_parents(dest, "export destination")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"cannot write to {parent}: permission denied")
    remove_stale_temps(parent)  # what an export killed earlier left beside its destination
    staging = parent / temp_name(f".{dest.name}")
    staging.mkdir(mode=0o700)
    return staging, made


def compression_ratio(repo: Repository, snap: Snapshot, payloads: dict[tuple[bytes, int], int],
                      read: Iterable[str] = ()) -> float:
    """Bytes the snapshot's distinct payloads occupy in the repository / bytes of its files.

    ``payloads`` holds what the export already read, all of the files ``read``; the other
    (small) files are looked up here.
    """
    from ..chunklist import load_list

    payloads, read = dict(payloads), set(read)
    with repo.reader() as reader:
        for entry in snap.files:
            if entry.path in read:
                continue
            ids = load_list(entry.chunks, reader)
            for loc in repo.index.locations(ids):
                if loc is not None:  # a payload may hold many chunks
                    payloads[(loc.pack_id, loc.offset)] = loc.stored_length
    total = sum(f.size for f in snap.files)
    return round(sum(payloads.values()) / total, 4) if total else 1.0


def export_snapshot(repo: Repository, ref: str, dest: str | os.PathLike, *, compress: bool = False,
                    sanitize: bool = True, progress: Callable[[int], None] | None = None,
                    include_config: bool = True, selection: Selection = Selection(),
                    redact_vault: str | None = None) -> ExportResult:
    """Write snapshot ``ref`` (within ``selection``) to ``dest``; ``include_config=False`` leaves
    out the ``config/`` files.  ``sanitize`` replaces the secrets of the ``config/`` files
    (``sanitize.sanitize_file``); ``redact_vault`` (``low``, ``medium``, ``high``) the
    knowledge vault's secret values at or above that sensitivity (``vault.py``).

    ``progress(n)`` is told of every ``n`` bytes written (database, dump, memories).
    """
    started = time.perf_counter()
    level = parse_level(redact_vault)
    snap = resolve_snapshot(repo, ref, selection)
    dest = Path(dest)
    staging, made = _prepare_destination(dest)
    try:
        result = _export_into(repo, snap, staging, compress=compress, sanitize=sanitize, progress=progress,
                              include_config=include_config, vault_level=level)
        if dest.exists():
            dest.rmdir()
        os.rename(staging, dest)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        remove_made(made)
        if disk_full(exc):
            raise DiskFull(f"disk full while exporting to {dest}; the partial folder was removed") from None
        raise
    result.path = dest
    result.duration_s = time.perf_counter() - started
    return result


def _export_into(repo: Repository, snap: Snapshot, root: Path, *, compress: bool, sanitize: bool,
                 progress: Callable[[int], None] | None, include_config: bool = True,
                 vault_level: str | None = None) -> ExportResult:
    checksums: dict[str, str] = {}
    sanitized = [s for s in snap.sanitized if include_config or not s.startswith("config/")]
    paths = {f.path for f in snap.files}
    for sub in ("database", "config", "memories", "verification"):
        if sub != "config" or include_config:
            (root / sub).mkdir(mode=0o700)

    # Files stored as they were (config, settings, logs), sanitising config/ on the way out.
    config_doc: dict = {}
    for entry in snap.files:
        if entry.path == DB_PATH or entry.path.startswith(PG_DIR + "/"):
            continue
        if not include_config and entry.path.startswith("config/"):
            if entry.path == CONFIG_PATH:  # still read: it names the memory tables and the Mirix version
                buf = io.BytesIO()
                write_file(repo, entry, buf)
                config_doc = yaml.safe_load(buf.getvalue()) or {}
            continue
        target = root / entry.path
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(target, "wb") as out:
            write_file(repo, entry, out)
        if entry.path == CONFIG_PATH:
            config_doc = yaml.safe_load(target.read_bytes().decode()) or {}
        if sanitize and entry.path.startswith("config/"):
            clean, removed = sanitize_file(entry.path, target.read_bytes())
            if removed:  # else the user's bytes stay as they are
                target.write_bytes(clean)
            sanitized += [f"{entry.path}:{key}" for key in removed]
        checksums[entry.path] = file_md5(target)

    memory_counts: dict[str, int] = {}
    conversation_count = 0
    verification = {"integrity_check": "not run", "completeness_check": "not run"}
    db_payloads: dict[tuple[bytes, int], int] = {}
    db_read: Iterable[str] = ()  # the snapshot files whose payloads are all in db_payloads
    tables = memory_tables(config_doc)
    vault = VaultRedaction(vault_level, tables.get("knowledge_vault", "knowledge_vault")) if vault_level else None
    if DB_PATH in paths:
        db = _export_database(repo, snap, root, tables, progress, vault)
        checksums.update(db.checksums)
        memory_counts, db_payloads, db_read = db.memory_counts, db.payloads, db.read
        conversation_count = db.info["tables"].get(CONVERSATION_TABLE, {}).get("row_count", 0)
        verification = {"integrity_check": "passed" if db.check == "ok" else f"failed: {db.check}",
                        "integrity_check_method": "sqlite PRAGMA quick_check of database/sqlite.db",
                        "completeness_check": "passed" if db.complete else "failed"}
    elif INFO_PATH in paths:
        db = _export_pg_database(repo, snap, root, tables, progress, vault)
        checksums.update(db.checksums)
        memory_counts, db_payloads, db_read = db.memory_counts, db.payloads, db.read
        conversation_count = db.info["tables"].get(CONVERSATION_TABLE, {}).get("row_count", 0)
        verification = {"integrity_check": "passed",
                        "integrity_check_method": "every chunk of the snapshot hash-checked while writing the dump",
                        "completeness_check": "passed" if db.complete else "failed"}

    compressed_files = {}
    if compress:
        for rel in sorted(checksums):
            path = root / rel
            if path.stat().st_size >= COMPRESS_MIN_BYTES:
                compressed_files[rel + ZST] = {"original": rel, "original_md5": checksums.pop(rel),
                                               "original_size": path.stat().st_size}
                _compress_file(path, path.with_name(path.name + ZST))
                checksums[rel + ZST] = file_md5(path.with_name(path.name + ZST))

    sizes = {rel: (root / rel).stat().st_size for rel in checksums}
    verification["compression_ratio"] = compression_ratio(repo, snap, db_payloads, db_read)
    verification["memory_counts"] = memory_counts
    verification["conversation_count"] = conversation_count
    meta = {
        "backup_info": {
            "version": FOLDER_VERSION,
            "timestamp": snap.time.replace("+00:00", "Z"),
            "mirix_version": str(config_doc.get("mirix_version", "unknown")),
            "database_type": snap.database.get("type", "unknown"),
            "backup_size_bytes": 0,
            "file_count": 0,
            "snapstore_version": __version__,
            "snapshot_id": snap.id,
            "agent_name": snap.agent,
            "host": snap.host,
            "compressed": compress,
            "compressed_files": compressed_files,
            "sanitized": sanitize,
            "vault_redaction": vault.as_dict() if vault else None,
            "include_config": include_config and CONFIG_PATH in paths,  # a --db snapshot has no config
        },
        "checksums": {},
        "verification": verification,
    }
    report = render_report(meta, memory_counts, conversation_count, sizes, sanitized, vault)
    (root / REPORT).write_text(report)
    checksums[REPORT] = hashlib.md5(report.encode()).hexdigest()
    sizes[REPORT] = (root / REPORT).stat().st_size
    meta["checksums"] = dict(sorted(checksums.items()))
    meta["backup_info"]["backup_size_bytes"] = sum(sizes.values())
    meta["backup_info"]["file_count"] = len(checksums) + 2  # + metadata.json and checksums.md5
    write_json(root / METADATA, meta)
    all_sums = {**checksums, METADATA: file_md5(root / METADATA)}
    (root / CHECKSUMS).write_text("".join(md5_line(p, d) for p, d in sorted(all_sums.items())))
    size = sum(sizes.values()) + (root / METADATA).stat().st_size + (root / CHECKSUMS).stat().st_size
    return ExportResult(root, snap.id, len(all_sums) + 1, size, all_sums, verification, 0.0, sanitized, vault)


@dataclass
class DatabaseExport:
    checksums: dict[str, str]
    memory_counts: dict[str, int]
    info: dict
    check: str
    complete: bool
    payloads: dict[tuple[bytes, int], int]
    read: Iterable[str]  # the snapshot files whose payloads are all in ``payloads``


def _export_database(repo: Repository, snap: Snapshot, root: Path, tables: dict[str, str],
                     progress: Callable[[int], None] | None, vault: VaultRedaction | None = None) -> DatabaseExport:
    """The database file, its SQL dump, schema info and memories JSON, each with its MD5.

    Once the file is materialised (its MD5 following the writers), the dump (sqlite3,
    its MD5 following it) and the structural check run beside the memory JSON (this
    thread); all of them release the GIL.  With ``vault``, the file is redacted first and
    everything else derives from the redacted file (its MD5 is then taken afterwards).
    """
    db_file = root / DB_PATH
    entry = snap.file(DB_PATH)
    checksums, counts = {}, {}
    with FollowingMD5(db_file) as db_md5:
        payloads = materialize(repo, entry, db_file, progress, durable=False,
                               on_prefix=None if vault else db_md5.advance)
        if vault:
            done = redact_sqlite(db_file, vault.table, vault.level)
            vault.redacted, vault.kept = done.redacted, done.kept
        with ThreadPoolExecutor(2) as pool:
            dump_md5 = pool.submit(write_sql_dump, db_file, root / DUMP, progress)
            check_done = pool.submit(_quick_check, db_file)
            conn = open_readonly(db_file)
            try:
                info = schema_info(conn)
                for kind, table in tables.items():
                    name = f"memories/{memory_file_name(kind)}"
                    with open(root / name, "wb") as out:
                        counts[kind], checksums[name] = write_memory_json(conn, kind, table, out, progress)
            finally:
                conn.close()
            checksums[DUMP] = dump_md5.result()
            check = check_done.result()
        checksums[DB_PATH] = file_md5(db_file) if vault else db_md5.finish(entry.size)
    write_json(root / SCHEMA_INFO, info)
    checksums[SCHEMA_INFO] = file_md5(root / SCHEMA_INFO)
    complete = all(counts[k] == info["tables"].get(t, {}).get("row_count", 0) for k, t in tables.items())
    return DatabaseExport(checksums, counts, info, check, complete, payloads, {DB_PATH})


def _export_pg_database(repo: Repository, snap: Snapshot, root: Path, tables: dict[str, str],
                        progress: Callable[[int], None] | None, vault: VaultRedaction | None = None
                        ) -> DatabaseExport:
    """``mirix_dump.sql``, schema info and memories JSON of a PostgreSQL snapshot, all from
    the repository, each table's chunks read (decompressed, hash-checked) once: this thread
    writes the dump and hands each memory table's COPY data, on its way into the dump, to a
    thread that writes its JSON file (chunk reads, MD5 and file writes release the GIL).
    With ``vault``, the vault table's rows are redacted as they are read, before either."""
    capture = open_pg_capture(repo, snap)
    by_label = {table_label(t): t for t in capture.tables()}
    vault_table = by_label.get(vault.table) if vault else None

    def rows(table: TableInfo, counted: VaultRedaction | None = None) -> Iterable[bytes]:
        if vault_table is None or table.key != vault_table.key:
            return capture.copy_data(table)
        return redact_copy_rows(table, capture.copy_data(table), counted or VaultRedaction(vault.level, vault.table))

    position = {t.key: n for n, t in enumerate(capture.tables())}
    jobs = sorted(((kind, name, by_label.get(name)) for kind, name in tables.items()),
                  key=lambda job: position[job[2].key] if job[2] else -1)
    fed: dict[str, str] = {}  # table key -> the memory type whose file its dump data feeds
    for kind, _, table in jobs:
        if table is not None:
            fed.setdefault(table.key, kind)
    feed: queue.Queue = queue.Queue(maxsize=8)  # ~1 MiB blocks: bounded memory
    done = object()

    def table_data(table: TableInfo) -> Iterator[bytes]:
        if table.key not in fed:
            yield from rows(table, vault)
            return
        for block in rows(table, vault):
            feed.put(block)
            yield block
        feed.put(None)

    dump_ended = False

    def fed_blocks() -> Iterator[bytes]:
        nonlocal dump_ended
        while (block := feed.get()) is not None:
            if block is done:
                dump_ended = True
                raise RuntimeError("the dump stopped before this table's data ended")
            yield block

    def write_memories() -> tuple[dict, dict]:
        counts, sums = {}, {}
        try:
            for kind, name, table in jobs:
                if table is None:
                    blocks: Iterable[bytes] = ()
                elif fed[table.key] == kind:
                    blocks = fed_blocks()
                else:  # a second memory type on the same table (config override): read again
                    blocks = rows(table)
                path = f"memories/{memory_file_name(kind)}"
                with open(root / path, "wb") as out:
                    counts[kind], sums[path] = write_pg_memory_json(kind, name, table, blocks, out, progress)
        finally:  # the dump never waits on a queue nobody empties
            while not dump_ended and feed.get() is not done:
                pass
        return {kind: counts[kind] for kind in tables}, sums  # counts in the config's order

    with ThreadPoolExecutor(1) as pool:
        memories = pool.submit(write_memories)
        try:
            with open(root / DUMP, "wb") as dump:
                checksums = {DUMP: write_pg_dump(capture, dump, progress, table_data)}
        finally:
            feed.put(done)
        counts, sums = memories.result()
    checksums.update(sums)
    info = pg_schema_info(capture)
    write_json(root / SCHEMA_INFO, info)
    checksums[SCHEMA_INFO] = file_md5(root / SCHEMA_INFO)
    complete = all(counts[k] == info["tables"].get(t, {}).get("row_count", 0) for k, t in tables.items())
    return DatabaseExport(checksums, counts, info, "ok", complete, capture.payloads, capture.read_paths)


def _quick_check(db_file: Path) -> str:
    conn = open_readonly(db_file)
    try:
        return integrity_check(conn)
    finally:
        conn.close()


def _compress_file(src: Path, dst: Path) -> None:
    cctx = zstandard.ZstdCompressor(level=3, threads=-1, write_content_size=True)
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        cctx.copy_stream(fin, fout, size=src.stat().st_size)
    src.unlink()
