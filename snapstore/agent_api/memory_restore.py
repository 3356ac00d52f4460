"""Replacing the rows of memory types from ``memories/<type>_memory.json`` documents.

The document is what export writes: ``{"memory_type", "table", "row_count",
"rows": [{column: value, "$rowid": n}]}`` with ``{"$json": ...}`` and
``{"$base64": ...}`` wrappers (``from_json_value`` inverts them).  All the given
types are replaced in one ``BEGIN IMMEDIATE`` transaction on the live database:
every row of the table is deleted and the document's rows inserted with their
rowids, so the agent's triggers keep the FTS indexes in step and a failure leaves
the database as it was.  A safety snapshot of the whole agent is taken first.
"""
from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any, Mapping

from ..errors import IntegrityError, SourceError, UsageError
from ..export.sqlite_content import from_json_value
from ..memory_types import memory_tables, parse_memory_types
from ..restore.safety import safety_snapshot
from .results import error_text

if TYPE_CHECKING:
    from .wrapper import AgentWrapper

BUSY_TIMEOUT_S = 30.0


def _rows(kind: str, data: Any) -> list[dict]:
    if not isinstance(data, Mapping) or not isinstance(data.get("rows"), list):
        raise UsageError(f"{kind} memory data must be a memories JSON document with a 'rows' list")
    declared = data.get("memory_type")
    if declared is not None and str(declared).removesuffix("_memory") != kind:
        raise UsageError(f"the data holds {declared} memories, not {kind}")
    rows = data["rows"]
    if "row_count" in data and data["row_count"] != len(rows):
        raise IntegrityError(f"{kind} memory data is incomplete: {len(rows)} rows, row_count says {data['row_count']}")
    if not all(isinstance(r, Mapping) for r in rows):
        raise UsageError(f"{kind} memory data has a row that is not an object")
    return rows


def _table_columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]


def _replace(conn: sqlite3.Connection, table: str, rows: list[dict], columns: list[str]) -> tuple[int, int, set[str]]:
    known = set(columns)
    dropped: set[str] = set()
    deleted = conn.execute(f'DELETE FROM "{table}"').rowcount
    statements: dict[tuple[str, ...], str] = {}
    for row in rows:
        cols = tuple(c for c in row if c in known)
        dropped |= {c for c in row if c not in known and c != "$rowid"}
        names = (["rowid"] if "$rowid" in row else []) + [f'"{c}"' for c in cols]
        key = (("$rowid",) if "$rowid" in row else ()) + cols
        sql = statements.get(key)
        if sql is None:
            sql = statements[key] = (f'INSERT INTO "{table}" ({", ".join(names)}) '
                                     f'VALUES ({", ".join("?" * len(names))})')
        values = ([row["$rowid"]] if "$rowid" in row else []) + [from_json_value(row[c]) for c in cols]
        conn.execute(sql, values)
    return deleted, len(rows), dropped


def restore_memory_documents(agent: "AgentWrapper", documents: Mapping[str, Any], *,
                             safety: bool = True) -> dict:
    """Replace each memory type's rows with its document's, all in one transaction."""
    result: dict = {"success": False, "memory_types": {}, "safety_snapshot_id": None, "warnings": []}
    conn = None
    try:
        source = agent.reload()
        mapping = memory_tables(agent.config)
        plan = []
        for name, data in documents.items():
            [kind] = parse_memory_types([str(name)], mapping)
            plan.append((kind, mapping[kind], _rows(kind, data)))
        db = source.sqlite_path
        if not db.is_file():
            raise SourceError(f"the agent's database {db} does not exist")
        conn = sqlite3.connect(db, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        columns = {}
        for kind, table, _ in plan:
            columns[table] = _table_columns(conn, table)
            if not columns[table]:
                raise SourceError(f"the agent's database {db} has no table {table} ({kind} memory)")
        if safety:
            result["safety_snapshot_id"] = safety_snapshot(agent.repository, config_path=agent.config_path)
        conn.execute("BEGIN IMMEDIATE")
        try:
            for kind, table, rows in plan:
                deleted, inserted, dropped = _replace(conn, table, rows, columns[table])
                result["memory_types"][kind] = {"table": table, "deleted": deleted, "inserted": inserted}
                if dropped:
                    result["warnings"].append(f"{kind}: columns not in table {table} were left out: "
                                              f"{', '.join(sorted(dropped))}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except Exception as exc:
        result["memory_types"] = {}
        result["error"] = error_text(exc)
        return result
    finally:
        if conn is not None:
            conn.close()
    result["success"] = True
    return result


def restore_memory_type(agent: "AgentWrapper", memory_type: str, data: Any, *, safety: bool = True) -> dict:
    """One memory type: ``{"success", "memory_type", "table", "deleted", "inserted", "safety_snapshot_id"}``."""
    out = restore_memory_documents(agent, {memory_type: data}, safety=safety)
    detail = next(iter(out["memory_types"].values()), {})
    return {"success": out["success"], "memory_type": str(memory_type).removesuffix("_memory"),
            "table": detail.get("table"), "deleted": detail.get("deleted", 0),
            "inserted": detail.get("inserted", 0), "safety_snapshot_id": out["safety_snapshot_id"],
            "warnings": out["warnings"], **({"error": out["error"]} if "error" in out else {})}
