"""snapstore: content-addressed, deduplicated, incremental snapshots of AI-agent memory.

The library API (the CLI is a thin layer over it)::

    from snapstore import Repository, backup_agent, load_agent_source
    from snapstore import export_snapshot, import_folder, restore

and the Mirix-compatible API (the reference's ``AgentWrapper`` and helpers)::

    from snapstore import AgentWrapper, verify_backup, cleanup_old_backups, ...
"""
__version__ = "0.1.0"

from .backup import backup_agent  # noqa: E402
from .export import export_snapshot  # noqa: E402
from .importer import import_folder  # noqa: E402
from .repository import Repository  # noqa: E402
from .restore import restore  # noqa: E402  (the function; the package stays importable as snapstore.restore)
from .sources.agent import load_agent_source  # noqa: E402

_AGENT_API = ("AgentLoadError", "AgentWrapper", "InvalidMigrationPackage", "RecoveryError", "check_file_checksums",
              "cleanup_old_backups", "create_secure_backup", "encrypt_backup_files", "export_for_migration",
              "get_database_type", "get_mirix_version", "get_system_info", "import_from_migration",
              "monitor_backup_sizes", "recover_database_only", "recover_specific_memories",
              "remove_plaintext_sensitive", "run_post_migration_tests", "verify_backup", "verify_config_files",
              "verify_database_dump", "verify_memory_data", "verify_migration_package")


def __getattr__(name: str):
    """The Mirix-compatible API loads on first use, keeping the CLI's start-up short.

    ``verify_backup`` is ``snapstore.folder.verify.verify_backup`` plus encrypted folders.
    """
    if name in _AGENT_API:
        from . import agent_api

        return getattr(agent_api, name)
    raise AttributeError(f"module 'snapstore' has no attribute {name!r}")


__all__ = ["__version__", "Repository", "backup_agent", "export_snapshot", "import_folder", "load_agent_source",
           "restore", "verify_backup",
           "AgentLoadError", "AgentWrapper", "InvalidMigrationPackage", "RecoveryError", "check_file_checksums",
           "cleanup_old_backups", "create_secure_backup", "encrypt_backup_files", "export_for_migration",
           "get_database_type", "get_mirix_version", "get_system_info", "import_from_migration",
           "monitor_backup_sizes", "recover_database_only", "recover_specific_memories",
           "remove_plaintext_sensitive", "run_post_migration_tests", "verify_config_files",
           "verify_database_dump", "verify_memory_data", "verify_migration_package"]
