"""What a verify run found: damage grouped by cause, each naming what it breaks.

One ``Damage`` is one cause (a missing pack, the corrupt chunks of one pack, a
corrupt manifest, a file whose chunk list does not match its digest...) with
the bad blobs it involves and, for every snapshot it damages, the paths of the
damaged files in the backup-folder layout.  Grouping by cause keeps a deleted
32 MiB pack to one entry instead of thousands of chunk lines.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import IntegrityError
from .faults import VerifyIncomplete

CLEAN, DAMAGED, INCOMPLETE = "clean", "damaged", "incomplete"

_TEMPLATES = {
    # kind: message, with {pack}, {n} (bad blobs), {what} ("chunk"/"chunk-list tree"), {detail}
    "chunk-missing": "{n} {what}(s) not in any index file",
    "chunk-outside": "index places {n} {what}(s) outside pack {pack}",
    "chunk-corrupt": "{n} {what}(s) in pack {pack} do not match their hash",
    "chunk-truncated": "{n} {what}(s) in pack {pack} lie past its end (pack truncated)",
    "pack-missing": "pack {pack} is missing ({n} {what}(s) needed from it)",
    "pack-size": "pack {pack} has the wrong size: {detail}",
    "pack-hash": "pack {pack} does not hash to its name (content changed)",
    "pack-trailer": "pack {pack}: {detail}",
    "pack-unreadable": "pack {pack} cannot be read: {detail}",
    "index-corrupt": "index file {index_file}: {detail}",
    "manifest-corrupt": "{detail}",
    "tree-malformed": "chunk-list tree {blob}: {detail}",
    "digest-mismatch": "chunk list does not hash to the manifest's digest",
    "key-corrupt": "{detail}",
}


@dataclass
class Damage:
    kind: str
    pack: str | None = None
    blob_type: str | None = None  # "data" or "tree"
    detail: str = ""
    index_file: str | None = None
    blobs: set[str] = field(default_factory=set)
    snapshots: dict[str, set[str]] = field(default_factory=dict)

    @property
    def message(self) -> str:
        what = "chunk-list tree" if self.blob_type == "tree" else "chunk"
        blob = min(self.blobs)[:16] if self.blobs else "?"
        return _TEMPLATES[self.kind].format(pack=(self.pack or "?")[:16], n=len(self.blobs), what=what,
                                            detail=self.detail, index_file=(self.index_file or "?")[:16],
                                            blob=blob)

    def hit(self, snapshot_id: str, path: str | None) -> None:
        paths = self.snapshots.setdefault(snapshot_id, set())
        if path is not None:
            paths.add(path)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "message": self.message, "pack": self.pack, "blob_type": self.blob_type,
                "index_file": self.index_file, "blobs": sorted(self.blobs),
                "snapshots": [{"id": sid, "short_id": sid[:8], "files": sorted(paths)}
                              for sid, paths in sorted(self.snapshots.items())]}


class DamageLog:
    """Collects damage by cause; the walk and the pack pass both add to it."""

    def __init__(self) -> None:
        self._by_key: dict[tuple, Damage] = {}

    def cause(self, kind: str, *, pack: bytes | None = None, blob_type: str | None = None,
              detail: str = "", index_file: str | None = None, key: tuple = ()) -> Damage:
        full_key = (kind, pack, blob_type, index_file, *key)
        damage = self._by_key.get(full_key)
        if damage is None:
            damage = self._by_key[full_key] = Damage(kind, pack.hex() if pack else None, blob_type, detail,
                                                     index_file)
        return damage

    def entries(self) -> list[Damage]:
        """Every cause found; a blob-level cause left without blobs (superseded by a later walk) is dropped."""
        found = [d for d in self._by_key.values()
                 if d.blobs or d.snapshots or not (d.kind.startswith("chunk-") or d.kind == "tree-malformed")]
        return sorted(found, key=lambda d: (d.kind, d.pack or "", d.index_file or "", sorted(d.snapshots)))

    def __len__(self) -> int:
        return len(self._by_key)


@dataclass
class VerifyReport:
    mode: str  # "quick" or "full"
    read_subset: str | None = None
    snapshots: int = 0
    files: int = 0
    chunks: int = 0  # distinct blobs whose index entry and pack were checked
    packs: int = 0  # packs whose presence and size were checked
    packs_read: int = 0
    blobs_read: int = 0
    bytes_read: int = 0
    duration_s: float = 0.0
    damage: list[Damage] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # what could not be read at all
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.damage and not self.unchecked

    @property
    def status(self) -> str:
        if self.damage:
            return DAMAGED
        return INCOMPLETE if self.unchecked else CLEAN

    @property
    def exit_code(self) -> int:
        """0 clean, 4 damaged (even if some part was also unreadable), 5 could not check."""
        return {CLEAN: 0, DAMAGED: IntegrityError.exit_code, INCOMPLETE: VerifyIncomplete.exit_code}[self.status]

    def damaged_snapshots(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for d in self.damage:
            for sid, paths in d.snapshots.items():
                out.setdefault(sid, set()).update(paths)
        return out

    @property
    def fix(self) -> list[str]:
        """The commands that repair what was found, in order (empty when clean)."""
        kinds = {d.kind for d in self.damage}
        steps = []
        if "index-corrupt" in kinds:
            steps.append("snapstore repair index")
        if "key-corrupt" in kinds:
            steps.append("snapstore key remove ID (each damaged key file; 'snapstore key add' gives its "
                         "passphrase a new one)")
        if kinds - {"index-corrupt", "manifest-corrupt", "digest-mismatch", "tree-malformed", "key-corrupt"}:
            steps += ["snapstore repair packs",
                      "snapstore backup ... (the same agent: stores the lost chunks again)",
                      "snapstore verify --full"]
        return steps

    def raise_for_status(self) -> None:
        """Raise the typed error matching the outcome (the CLI's exit code), or return if clean."""
        if self.status == DAMAGED:
            raise IntegrityError(f"repository damaged: {len(self.damage)} problem(s), "
                                 f"{len(self.damaged_snapshots())} snapshot(s) affected")
        if self.status == INCOMPLETE:
            raise VerifyIncomplete(f"verify could not check everything: {self.unchecked[0]}"
                                   + (f" (and {len(self.unchecked) - 1} more)" if len(self.unchecked) > 1 else ""))

    def as_dict(self) -> dict:
        return {"status": self.status, "clean": self.clean, "mode": self.mode, "read_subset": self.read_subset,
                "snapshots": self.snapshots, "files": self.files, "chunks": self.chunks, "packs": self.packs,
                "packs_read": self.packs_read, "blobs_read": self.blobs_read, "bytes_read": self.bytes_read,
                "duration_s": round(self.duration_s, 3),
                "damage": [d.as_dict() for d in self.damage],
                "damaged_snapshots": {sid: sorted(p) for sid, p in sorted(self.damaged_snapshots().items())},
                "unchecked": self.unchecked, "notes": self.notes, "fix": self.fix}
