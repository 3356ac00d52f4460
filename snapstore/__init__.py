"""snapstore: content-addressed, deduplicated, incremental snapshots of AI-agent memory.

The library API (the CLI is a thin layer over it)::

    from snapstore import Repository, backup_agent, load_agent_source
    from snapstore import export_snapshot, import_folder, restore
"""
__version__ = "0.1.0"

from .backup import backup_agent  # noqa: E402
from .export import export_snapshot  # noqa: E402
from .folder.verify import verify_backup  # noqa: E402
from .importer import import_folder  # noqa: E402
from .repository import Repository  # noqa: E402
from .restore import restore  # noqa: E402  (the function; the package stays importable as snapstore.restore)
from .sources.agent import load_agent_source  # noqa: E402

__all__ = ["__version__", "Repository", "backup_agent", "export_snapshot", "import_folder", "load_agent_source",
           "restore", "verify_backup"]
