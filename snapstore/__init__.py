"""snapstore: content-addressed, deduplicated, incremental snapshots of AI-agent memory.

The library API (the CLI is a thin layer over it)::

    from snapstore import Repository, backup_agent, load_agent_source
    from snapstore import export_snapshot, import_folder, restore

and the Mirix-compatible API (the reference's ``AgentWrapper`` and helpers)::

    from snapstore import AgentWrapper, verify_backup, cleanup_old_backups, ...
"""
import sys
import types

__version__ = "0.1.0"

_CORE = {"backup_agent": "backup", "export_snapshot": "export", "import_folder": "importer",
         "Repository": "repository", "load_agent_source": "sources.agent", "restore": "restore"}
_AGENT_API = ("AgentLoadError", "AgentWrapper", "InvalidMigrationPackage", "RecoveryError", "check_file_checksums",
              "cleanup_old_backups", "create_secure_backup", "encrypt_backup_files", "export_for_migration",
              "get_database_type", "get_mirix_version", "get_system_info", "import_from_migration",
              "monitor_backup_sizes", "recover_database_only", "recover_specific_memories",
              "remove_plaintext_sensitive", "run_post_migration_tests", "verify_backup", "verify_config_files",
              "verify_database_dump", "verify_memory_data", "verify_migration_package")


def __getattr__(name: str):
    """The API loads on first use, so a CLI command imports only what it runs.

    ``verify_backup`` is ``snapstore.folder.verify.verify_backup`` plus encrypted folders.
    """
    import importlib

    if name in _CORE:
        return getattr(importlib.import_module(f".{_CORE[name]}", __name__), name)
    if name in _AGENT_API:
        return getattr(importlib.import_module(".agent_api", __name__), name)
    raise AttributeError(f"module 'snapstore' has no attribute {name!r}")


class _Package(types.ModuleType):
    """``snapstore.restore`` names the API's function although a subpackage has that name too:
    importing the subpackage (which sets it as an attribute here) must not shadow the function,
    and the function is imported only on first use (the subpackage pulls in psycopg)."""

    def __setattr__(self, name: str, value) -> None:
        if name == "restore" and isinstance(value, types.ModuleType):
            return  # resolved through __getattr__, to the function
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__all__ = ["__version__", "Repository", "backup_agent", "export_snapshot", "import_folder", "load_agent_source",
           "restore", "verify_backup",
           "AgentLoadError", "AgentWrapper", "InvalidMigrationPackage", "RecoveryError", "check_file_checksums",
           "cleanup_old_backups", "create_secure_backup", "encrypt_backup_files", "export_for_migration",
           "get_database_type", "get_mirix_version", "get_system_info", "import_from_migration",
           "monitor_backup_sizes", "recover_database_only", "recover_specific_memories",
           "remove_plaintext_sensitive", "run_post_migration_tests", "verify_config_files",
           "verify_database_dump", "verify_memory_data", "verify_migration_package"]
