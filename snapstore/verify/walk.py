"""The structure walk: every file of every snapshot, down to the chunks it needs.

Work is done once per distinct tree blob, not per snapshot: a base list is
checked leaf by leaf (a leaf's verdict is cached by its id, and unchanged leaves
are shared between bases), a patch by its own ids, an inline list once per
distinct byte string.  A file then costs a few dict lookups, so a thousand
snapshots of a barely changing agent cost little more than ten.

A chunk is judged by ``RepoView``: absent from the index, or given a cause by
the pack stat (quick) or the pack pass (full).  Every bad chunk and unreadable
tree blob is recorded against the snapshots and paths of the files it damages.
With ``derive_digests`` (full mode) each distinct list is also re-assembled and
hashed against the manifest's ``digest``.

Findings are held until ``commit()``: the full check walks while its workers
read the packs, and walks again only if the pack pass changed a verdict.
"""
from __future__ import annotations

import struct
from typing import Iterable

import numpy as np

from ..chunklist import ID_SIZE, LEAF_IDS, ListRef, load_list
from ..errors import IntegrityError
from ..manifest import FileEntry, Snapshot, content_digest
from .faults import BlobFault
from .lists import Patch, TreeMalformed, check_leaf, decode_patch, decode_root
from .reader import TreeReader
from .report import Damage, DamageLog
from .view import RepoView

Bad = tuple[int, bytes, Damage]  # position in the list, chunk id, cause
Fault = tuple[bytes, Damage]  # tree blob that could not be used, cause


class _Parts:
    """A base list or a patch, judged once: its length, bad chunks, and unusable tree blobs."""

    __slots__ = ("n", "bad", "faults", "patch", "covered")

    def __init__(self, n: int | None, bad: list[Bad], faults: list[Fault], patch: Patch | None = None):
        self.n, self.bad, self.faults, self.patch = n, bad, faults, patch
        self.covered: frozenset[int] | None = None


class StructureWalk:
    def __init__(self, view: RepoView, reader: TreeReader, log: DamageLog, *, derive_digests: bool = False,
                 collect: set[bytes] | None = None):
        self.view, self.reader, self.log = view, reader, log
        self.derive_digests = derive_digests
        self.collect = collect  # when given, receives every blob id the walked snapshots need
        self.files = 0
        self.chunks = 0
        self._leaves: dict[bytes, tuple[int, list[Bad] | Damage]] = {}
        self._bases: dict[bytes, _Parts] = {}
        self._patches: dict[bytes, _Parts] = {}
        self._inline: dict[bytes, list[Bad]] = {}
        self._digests: dict[tuple, bytes | None] = {}
        self._hits: list[tuple[Damage, bytes, str, str]] = []  # cause, blob, snapshot, path
        self._digest_hits: list[tuple[str, str]] = []

    def run(self, snapshots: Iterable[Snapshot]) -> None:
        for snap in snapshots:
            for entry in snap.files:
                self._file(snap.id, entry)

    def commit(self, *, chunks: bool = True) -> None:
        """Record the findings in the damage log; ``chunks=False`` keeps only the digest checks."""
        if chunks:
            for cause, blob_id, snapshot_id, path in self._hits:
                cause.blobs.add(blob_id.hex())
                cause.hit(snapshot_id, path)
        for snapshot_id, path in self._digest_hits:
            self.log.cause("digest-mismatch").hit(snapshot_id, path)

    # -- causes ----------------------------------------------------------------
    def _tree_cause(self, exc: Exception, blob_id: bytes) -> Damage:
        if isinstance(exc, TreeMalformed):
            cause = self.log.cause("tree-malformed", blob_type="tree", detail=exc.detail, key=(blob_id,))
        else:
            assert isinstance(exc, BlobFault)
            cause = self.view.bad.get(blob_id) or self.log.cause(exc.kind, pack=exc.pack_id, blob_type="tree")
        return cause

    def _malformed(self, blob_id: bytes, detail: str) -> Damage:
        return self._tree_cause(TreeMalformed(blob_id, detail), blob_id)

    # -- judging chunk ids -------------------------------------------------------
    def _judge(self, ids: bytes) -> list[tuple[int, bytes, Damage]]:
        """(index in ``ids``, id, cause) of every chunk that cannot be read."""
        bad = self.view.bad
        self.chunks += len(ids) // ID_SIZE
        if self.collect is not None:
            self.collect.update(ids[i:i + ID_SIZE] for i in range(0, len(ids), ID_SIZE))
        missing = self.view.index.missing_mask(ids)  # a malformed leaf's partial last id: missing
        out = []
        if not bad:
            absent = np.flatnonzero(missing).tolist()
            if absent:
                cause = self.log.cause("chunk-missing", blob_type="data")
                out = [(n, ids[n * ID_SIZE:(n + 1) * ID_SIZE], cause) for n in absent]
            return out
        for n, gone in enumerate(missing.tolist()):
            blob_id = ids[n * ID_SIZE:(n + 1) * ID_SIZE]
            if not gone:
                cause = bad.get(blob_id)
                if cause is None:
                    continue
            else:
                cause = self.log.cause("chunk-missing", blob_type="data")
            out.append((n, blob_id, cause))
        return out

    def _read_tree(self, blob_id: bytes) -> bytes:
        if self.collect is not None:
            self.collect.add(blob_id)
        return self.reader.read(blob_id)

    # -- the parts of a list -----------------------------------------------------
    def _base(self, base_id: bytes) -> _Parts:
        parts = self._bases.get(base_id)
        if parts is not None:
            return parts
        try:
            root = decode_root(base_id, self._read_tree(base_id))
        except (BlobFault, TreeMalformed) as exc:
            parts = self._bases[base_id] = _Parts(None, [], [(base_id, self._tree_cause(exc, base_id))])
            return parts
        bad: list[Bad] = []
        faults: list[Fault] = []
        for index, leaf_id in enumerate(root.leaves):
            verdict = self._leaf(leaf_id, index, root)
            if isinstance(verdict, Damage):
                faults.append((leaf_id, verdict))
            else:
                shift = index * LEAF_IDS
                bad.extend((pos + shift, blob_id, cause) for pos, blob_id, cause in verdict)
        parts = self._bases[base_id] = _Parts(root.n, bad, faults)
        return parts

    def _leaf(self, leaf_id: bytes, index: int, root) -> list[Bad] | Damage:
        cached = self._leaves.get(leaf_id)
        if cached is not None:
            length, verdict = cached
            expected = min(LEAF_IDS, root.n - index * LEAF_IDS) * ID_SIZE
            if length != expected and not isinstance(verdict, Damage):
                return self._malformed(leaf_id, f"leaf {index} holds {length} bytes, expected {expected}")
            return verdict
        try:
            data = self._read_tree(leaf_id)
        except BlobFault as exc:
            verdict: list[Bad] | Damage = self._tree_cause(exc, leaf_id)
            self._leaves[leaf_id] = (-1, verdict)
            return verdict
        self._leaves[leaf_id] = (len(data), self._judge(data))
        try:
            check_leaf(leaf_id, data, index, root)
        except TreeMalformed as exc:
            return self._tree_cause(exc, leaf_id)
        return self._leaves[leaf_id][1]

    def _patch(self, patch_id: bytes) -> _Parts:
        parts = self._patches.get(patch_id)
        if parts is not None:
            return parts
        try:
            patch = decode_patch(patch_id, self._read_tree(patch_id))
        except (BlobFault, TreeMalformed) as exc:
            parts = _Parts(None, [], [(patch_id, self._tree_cause(exc, patch_id))])
        else:
            bad = [(patch.positions[k], blob_id, cause) for k, blob_id, cause in self._judge(patch.ids)]
            parts = _Parts(patch.n, bad, [], patch)
        self._patches[patch_id] = parts
        return parts

    # -- one file ----------------------------------------------------------------
    def _file(self, snapshot_id: str, entry: FileEntry) -> None:
        self.files += 1
        ref = entry.chunks
        faults: list[Fault] = []
        if ref.inline is not None:
            hits = self._inline.get(ref.inline)
            if hits is None:
                hits = self._inline[ref.inline] = self._judge(ref.inline)
        else:
            base = self._base(ref.base)
            faults.extend(base.faults)
            hits = [b for b in base.bad if b[0] < ref.count]
            if ref.patch is None:
                if base.n is not None and base.n < ref.count:
                    faults.append((ref.base, self._malformed(ref.base, f"base holds {base.n} ids, "
                                                                         f"a manifest needs {ref.count}")))
            else:
                patch = self._patch(ref.patch)
                faults.extend(patch.faults)
                if patch.patch is not None:
                    problem = self._patch_problem(ref, base, patch)
                    if problem:
                        faults.append((ref.patch, self._malformed(ref.patch, problem)))
                    covered = patch.covered
                    hits = [b for b in hits if b[0] not in covered]
                    hits.extend(b for b in patch.bad if b[0] < ref.count)
        record = self._hits.append
        for blob_id, cause in faults:
            record((cause, blob_id, snapshot_id, entry.path))
        for _pos, blob_id, cause in hits:
            record((cause, blob_id, snapshot_id, entry.path))
        if self.derive_digests and not faults:
            self._check_digest(snapshot_id, entry)

    @staticmethod
    def _patch_problem(ref: ListRef, base: _Parts, patch: _Parts) -> str | None:
        if patch.covered is None:
            patch.covered = frozenset(patch.patch.positions)
        if patch.patch.base != ref.base:
            return "patch is against another base than the manifest names"
        if patch.patch.n != ref.count:
            return f"patch makes {patch.patch.n} ids, a manifest needs {ref.count}"
        if base.n is not None and ref.count > base.n and not patch.covered.issuperset(range(base.n, ref.count)):
            return "patch extends the list with unset positions"
        return None

    def _check_digest(self, snapshot_id: str, entry: FileEntry) -> None:
        ref = entry.chunks
        key = (ref.count, ref.inline, ref.base, ref.patch)
        if key in self._digests:
            digest = self._digests[key]
        else:
            try:
                ids = load_list(ref, self.reader)
                digest = content_digest(ids) if len(ids) == ref.count * ID_SIZE else b""
            except (IntegrityError, ValueError, KeyError, TypeError, struct.error):
                digest = None  # the structure check has reported why
            self._digests[key] = digest
        if digest is not None and digest != entry.digest:
            self._digest_hits.append((snapshot_id, entry.path))
