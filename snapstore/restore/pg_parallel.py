"""A whole PostgreSQL snapshot into a database the restore created, on several connections.

As ``pg_restore -j`` does: the pre-data first (committed), then every table's COPY
on its own connection (largest first), then the post-data's primary keys, unique
constraints and indexes table by table in parallel (one table's objects stay on
one connection, in order: ``ADD PRIMARY KEY`` locks its table), and the rest
(foreign keys, triggers, anything else) in order on the main connection.  Only for
a database the restore created: it is dropped if anything fails, so the load needs
no single transaction.  Workers commit asynchronously; the main connection's
final synchronous commit flushes the WAL past all of theirs.
"""
from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable

import psycopg

from ..sources.postgres.connect import PgTarget

_OBJECT = re.compile(r"^--\n-- Name: [^\n]*; Type: ([A-Z ]+); Schema: [^\n]*\n--\n", re.M)
_TABLE = re.compile(r"^(?:ALTER TABLE ONLY|CREATE (?:UNIQUE )?INDEX \S+ ON(?: ONLY)?) (\S+)", re.M)
_PER_TABLE = ("CONSTRAINT", "INDEX")  # not "FK CONSTRAINT": a foreign key locks two tables


def workers() -> int:
    return max(2, min(4, os.cpu_count() or 2))


def split_post_data(script: str) -> tuple[str, dict[str, list[str]], str]:
    """(header, per-table objects that may run beside other tables', the rest in order)."""
    marks = list(_OBJECT.finditer(script))
    if not marks:
        return "", {}, script
    header = script[:marks[0].start()]
    per_table: dict[str, list[str]] = {}
    rest: list[str] = []
    for mark, nxt in zip(marks, marks[1:] + [None]):
        body = script[mark.start():nxt.start() if nxt else len(script)]
        table = _TABLE.search(body)
        if mark.group(1) in _PER_TABLE and table:
            per_table.setdefault(table.group(1), []).append(body)
        else:
            rest.append(body)
    return header, per_table, "".join(rest)


def run_all(db: PgTarget, jobs: Iterable[Callable[[psycopg.Connection], None]]) -> None:
    """Each job on a connection of its own pool thread, committed there; the first failure raises."""
    def run(job: Callable[[psycopg.Connection], None]) -> None:
        with db.connect() as conn:
            conn.execute("SET synchronous_commit = off")
            conn.execute("SET maintenance_work_mem = '256MB'")
            job(conn)
            conn.commit()

    with ThreadPoolExecutor(workers()) as pool:
        for future in [pool.submit(run, job) for job in jobs]:
            future.result()
