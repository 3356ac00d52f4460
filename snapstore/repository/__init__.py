"""Repository/store layer: packs, index, lock and the Repository facade."""
from .config import FORMAT_VERSION, RepoConfig
from .pack import BLOB_DATA, BLOB_TREE
from .repo import BlobReader, BlobWriter, Repository, WriteStats

__all__ = ["FORMAT_VERSION", "RepoConfig", "BLOB_DATA", "BLOB_TREE", "BlobReader", "BlobWriter",
           "Repository", "WriteStats"]
