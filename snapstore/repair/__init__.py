"""Repairs that make a repository whole again after damage.

* ``rebuild_index`` (``repair index``): the index is a cache; rebuild it from the packs' own tables.
* ``repair_packs`` (``repair packs``): re-hash the packs, salvage the intact blobs of damaged
  ones into new packs, and stop indexing what is lost, so the next backup stores it again.
"""
from .index import RepairReport, rebuild_index
from .packs import PackRepairReport, repair_packs

__all__ = ["PackRepairReport", "RepairReport", "rebuild_index", "repair_packs"]
