"""Reading the manifests to verify, tolerantly.

``manifest.list_snapshots`` and ``resolve_snapshot`` stop at the first corrupt
manifest; verify must instead report it and go on with the others, so it loads
each manifest itself.  Refs follow ``resolve_snapshot``: ``latest`` (the newest
readable snapshot that is not a safety snapshot), a full id, or a unique prefix of
at least 4 characters, all within the ``--agent``/``--host`` selection (``manifest.Selection``).
"""
from __future__ import annotations

from typing import Iterable

from ..errors import IntegrityError, SnapshotNotFound, UnsafePath, UnsupportedFormat
from ..manifest import Selection, Snapshot, latest_of, load_snapshot, match_id
from ..repository import Repository
from .faults import VerifyIncomplete
from .report import DamageLog, VerifyReport


def _load(repo: Repository, sid: str, log: DamageLog, report: VerifyReport) -> Snapshot | None:
    try:
        return load_snapshot(repo, sid)
    except (IntegrityError, UnsafePath) as exc:
        log.cause("manifest-corrupt", detail=str(exc), key=(sid,)).hit(sid, None)
    except UnsupportedFormat as exc:
        report.unchecked.append(str(exc))
    except SnapshotNotFound:
        pass  # forgotten while we ran
    except OSError as exc:
        report.unchecked.append(f"snapshot {sid[:8]}: {exc.strerror or exc}")
    return None


def load_manifests(repo: Repository, refs: Iterable[str | Snapshot] | None, log: DamageLog,
                   report: VerifyReport, selection: Selection = Selection()) -> list[Snapshot]:
    """The snapshots to check, oldest first; unreadable manifests are logged as damage.

    With a ``selection`` (``--agent``/``--host``) only its snapshots are checked; a
    manifest too damaged to say whose it is is then left to an unfiltered verify.
    """
    try:
        ids = repo.snapshot_ids()
    except OSError as exc:
        raise VerifyIncomplete(f"cannot list snapshots in {repo.location}: {exc.strerror or exc}") from None
    everything: list[Snapshot] | None = None
    if refs is not None or selection != Selection():
        everything = [s for s in (_load(repo, sid, DamageLog(), VerifyReport("quick")) for sid in ids) if s]
    if refs is not None:
        refs = list(refs)
        wanted: list[str] = []
        for ref in refs:
            if isinstance(ref, Snapshot):
                wanted.append(ref.id)
            elif ref != "latest":
                sid = match_id(ids, ref, "the repository")
                found = next((s for s in everything if s.id == sid), None)
                wanted.append(selection.check(found).id if found else sid)
        if "latest" in refs:
            if not everything:
                raise SnapshotNotFound(f"the repository at {repo.location} has no readable snapshots")
            wanted.append(latest_of(everything, selection).id)
        ids = sorted(set(wanted))
    elif everything is not None:
        ids = [s.id for s in everything if selection.matches(s)]
        if not ids:
            raise SnapshotNotFound(f"no snapshots of {selection.describe()}")
    snaps = [s for s in (_load(repo, sid, log, report) for sid in ids) if s is not None]
    report.snapshots = len(ids)
    snaps.sort(key=lambda s: (s.time, s.id))
    return snaps
