"""The Mirix-compatible Python API: ``AgentWrapper`` and every helper of the reference.

``from snapstore import AgentWrapper`` (and the helpers) runs the code examples of
the Mirix backup & restore chapter unchanged: ``save_agent`` / ``load_agent`` /
``restore_memory_type``; ``verify_backup``, ``cleanup_old_backups``,
``monitor_backup_sizes``, ``export_for_migration``, ``import_from_migration``,
``recover_specific_memories``, ``recover_database_only``, ``create_secure_backup``
and ``get_mirix_version``, plus the helpers those examples call.  One module per
job; see each for the details.
"""
from .backup_dirs import backup_kind, cleanup_old_backups, is_backup_folder, monitor_backup_sizes
from .database_recovery import recover_database_only
from .exceptions import AgentLoadError, InvalidMigrationPackage, RecoveryError
from .folder_crypto import decrypt_backup_folder, encrypt_backup_files, is_encrypted, remove_plaintext_sensitive
from .memory_recovery import recover_specific_memories
from .migration import export_for_migration, import_from_migration, verify_migration_package
from .post_migration import run_post_migration_tests
from .secure import create_secure_backup
from .verification import (check_file_checksums, verify_backup, verify_config_files, verify_database_dump,
                           verify_memory_data)
from .versions import get_database_type, get_mirix_version, get_system_info
from .wrapper import AgentWrapper

__all__ = [
    "AgentLoadError", "AgentWrapper", "InvalidMigrationPackage", "RecoveryError", "backup_kind",
    "check_file_checksums", "cleanup_old_backups", "create_secure_backup", "decrypt_backup_folder",
    "encrypt_backup_files", "export_for_migration", "get_database_type", "get_mirix_version", "get_system_info",
    "import_from_migration", "is_backup_folder", "is_encrypted", "monitor_backup_sizes", "recover_database_only",
    "recover_specific_memories", "remove_plaintext_sensitive", "run_post_migration_tests", "verify_backup",
    "verify_config_files", "verify_database_dump", "verify_memory_data", "verify_migration_package",
]
