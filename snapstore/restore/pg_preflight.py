"""Before a restore into PostgreSQL changes anything: can we reach, log in, create, write?

Every failure is one ``PgPrerequisite`` line naming the server by its URL with the
password redacted; the password itself goes to libpq as a keyword, never into a
message, a log or a result.
"""
from __future__ import annotations

import psycopg
from psycopg import sql

from ..errors import PgPrerequisite, UsageError
from ..sources.postgres.connect import PgTarget

def target_database(url: str) -> PgTarget:
    db = PgTarget.from_url(url)
    if not db.params.get("dbname"):
        raise UsageError(f"{db.label} names no database (postgresql://USER@HOST:PORT/DB)")
    return db


def create_database(db: PgTarget) -> None:
    """CREATE DATABASE, if the user may; connects to the server's ``postgres`` database."""
    with db.sibling("postgres").connect(autocommit=True) as conn:
        may = conn.execute("SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        if not (may and may[0]):
            raise PgPrerequisite(f"database {db.dbname} does not exist on {db.server} and user "
                                 f"{db.params.get('user', '')} may not create databases (CREATEDB)")
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(
            sql.Identifier(db.dbname)))


def drop_database(db: PgTarget) -> None:
    with db.sibling("postgres").connect(autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db.dbname)))


def check_privileges(conn: psycopg.Connection, db: PgTarget, tables: list[str], creates: bool) -> None:
    """The rights a restore needs, asked of the server (has_*_privilege), before any change."""
    user = db.params.get("user", "")
    row = conn.execute("SELECT has_database_privilege(current_database(), 'CONNECT'), "
                       "has_database_privilege(current_database(), 'TEMP'), "
                       "has_schema_privilege('public', 'CREATE'), has_schema_privilege('public', 'USAGE')").fetchone()
    connect, temp, create, usage = row
    if not (connect and usage):
        raise PgPrerequisite(f"user {user} may not use database {db.dbname} (CONNECT and USAGE on schema public)")
    if creates and not create:
        raise PgPrerequisite(f"user {user} may not create tables in {db.dbname} (CREATE on schema public)")
    if not creates and not temp:
        raise PgPrerequisite(f"user {user} may not create temporary tables in {db.dbname} (TEMP)")
    for table in tables:
        # a comma list is "any of"; each right is needed
        ok = conn.execute("SELECT bool_and(has_table_privilege(%s, p)) FROM unnest(%s::text[]) AS p",
                          (f"public.{quote(table)}", ["SELECT", "INSERT", "UPDATE", "DELETE"])).fetchone()[0]
        if not ok:
            raise PgPrerequisite(f"user {user} may not change table {table} in {db.dbname} "
                                 "(SELECT, INSERT, UPDATE, DELETE)")


def check_extensions(conn: psycopg.Connection, db: PgTarget, needed: list[str]) -> list[str]:
    """Every extension in ``needed`` is installed or can be created here; returns those to create.

    pgvector is the one a Mirix agent cannot do without (its embedding columns)."""
    to_create = []
    for ext in needed:
        installed, available = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = %s), "
            "EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = %s)", (ext, ext)).fetchone()
        if installed:
            continue
        what = "pgvector (extension vector)" if ext == "vector" else f"extension {ext}"
        if not available:
            raise PgPrerequisite(f"{what} is not installed on the PostgreSQL server at {db.server}; "
                                 "the snapshot's embedding columns need it: install it there, or restore to SQLite")
        superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
        if not superuser:
            raise PgPrerequisite(f"{what} is not created in {db.dbname} and user {db.params.get('user', '')} "
                                 f"may not create it: run CREATE EXTENSION {ext} there as a superuser")
        to_create.append(ext)
    return to_create


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
