"""Finding an agent's parts from its ``mirix.yaml``: database, config, environment, logs.

Database location, in SPEC.md §3 order: ``database_url`` in the config, else
``MIRIX_PG_URI``, else ``pg_*`` settings (config keys or ``MIRIX_PG_*``
variables), else SQLite at ``$MIRIX_DIR/sqlite.db`` (``~/.mirix``).  A relative
SQLite path is relative to the config file's directory, so an agent folder can
be moved as a whole.

The agent's name, which keys its history (parents, ``latest``): ``agent_name``
in the config, else the config's directory name.  A bare database (``--db``)
takes the name of the ``mirix.yaml`` beside it when that config points at this
very file, else ``--agent NAME``, else (``name_is_default``) the name earlier
snapshots of the same file used (``backup.known_agent``), else its directory's
name for Mirix's ``sqlite.db`` (what ``--config`` beside it would give) or the
file's stem.  With neither config nor database, the agent in ``$MIRIX_DIR``.

The environment captured is the agent's own settings file: ``--env-file`` if given, else
the ``.env`` beside its ``mirix.yaml``.  Never snapstore's own process environment (a cron
job's or a shell's variables are not the agent's), and never a ``.env`` that merely sits in
the directory snapstore runs from.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import yaml

from ..errors import SourceError, UsageError


@dataclass
class AgentSource:
    name: str
    config_path: Path | None
    config: dict[str, Any]
    database_url: str
    env_file: Path | None = None
    log_dir: Path | None = None
    name_is_default: bool = False  # named by its file alone: earlier snapshots' name comes first

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path:
        if not self.is_sqlite:
            raise SourceError(f"agent {self.name} does not use SQLite ({redact_url(self.database_url)})")
        return Path(self.database_url.split("///", 1)[1])


def redact_url(url: str) -> str:
    """A database URL safe to print and store: the password is replaced."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url


def read_config(config_path: Path) -> dict[str, Any]:
    try:
        text = config_path.read_text()
    except OSError as exc:
        raise SourceError(f"cannot read agent config {config_path}: {exc.strerror or exc}") from None
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise SourceError(f"agent config {config_path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise SourceError(f"agent config {config_path} must be a YAML mapping")
    return doc


def is_postgres_url(text: str) -> bool:
    return text.startswith(("postgresql://", "postgres://", "postgresql+"))


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


def locate_database(config: dict[str, Any], base_dir: Path, environ: os._Environ | dict = os.environ) -> str:
    url = config.get("database_url")
    if url:
        url = str(url)
        if url.startswith("sqlite:///"):
            path = Path(url[len("sqlite:///"):]).expanduser()
            return _sqlite_url(path if path.is_absolute() else base_dir / path)
        return url
    if environ.get("MIRIX_PG_URI"):
        return environ["MIRIX_PG_URI"]
    pg = {k: config.get(f"pg_{k}") or environ.get(f"MIRIX_PG_{k.upper()}")
          for k in ("user", "password", "host", "port", "db")}
    if pg["db"] or pg["host"]:
        auth = quote(pg["user"] or "postgres") + (f":{quote(str(pg['password']))}" if pg["password"] else "")
        return f"postgresql://{auth}@{pg['host'] or 'localhost'}:{pg['port'] or 5432}/{pg['db'] or 'mirix'}"
    return _sqlite_url(mirix_dir(environ) / "sqlite.db")


def mirix_dir(environ: os._Environ | dict = os.environ) -> Path:
    return Path(environ.get("MIRIX_DIR", "~/.mirix")).expanduser()


def config_beside(db_path: Path, environ: os._Environ | dict = os.environ) -> tuple[Path, dict[str, Any]] | None:
    """The ``mirix.yaml`` in the database's directory, if its database is this file."""
    cfg = db_path.parent / "mirix.yaml"
    if not cfg.is_file():
        return None
    try:
        config = read_config(cfg)
    except SourceError:
        return None
    if locate_database(config, cfg.parent, environ) != _sqlite_url(db_path):
        return None
    return cfg.resolve(), config


def _config_name(config: dict[str, Any], cfg_path: Path, agent: str | None) -> str:
    name = str(config.get("agent_name") or cfg_path.parent.name)
    if agent is not None and agent != name:
        raise UsageError(f"{cfg_path} names the agent {name}, not {agent}; set agent_name there to rename it")
    return name


def _default_agent(config_path, db_path, environ) -> tuple[str | None, str | None]:
    """No config and no database given: the agent in ``$MIRIX_DIR`` (Mirix's home)."""
    if config_path is not None or db_path is not None:
        return config_path, db_path
    home = mirix_dir(environ)
    if (home / "mirix.yaml").is_file():
        return str(home / "mirix.yaml"), None
    if (home / "sqlite.db").is_file():
        return None, str(home / "sqlite.db")
    raise UsageError(f"give the agent's config (--config PATH/mirix.yaml) or its database (--db PATH); "
                     f"there is no agent in $MIRIX_DIR ({home})")


def _env_file(given: str | os.PathLike | None, cfg_path: Path | None) -> Path | None:
    if given is not None:
        path = Path(given).expanduser().absolute()
        if not path.is_file():
            raise UsageError(f"environment file {path} does not exist or is not a file")
        return path
    beside = cfg_path.parent / ".env" if cfg_path is not None else None
    return beside if beside is not None and beside.is_file() else None


def load_agent_source(config_path: str | os.PathLike | None = None, db_path: str | os.PathLike | None = None,
                      environ: os._Environ | dict = os.environ, agent: str | None = None,
                      env_file: str | os.PathLike | None = None) -> AgentSource:
    """The agent described by ``config_path`` (or just a database file ``db_path``), named
    ``agent`` if given (it must agree with a config's name).

    Its environment settings are ``env_file`` if given, else the ``.env`` beside its config;
    a bare database has none (the current directory's ``.env`` is not the agent's)."""
    config_path, db_path = _default_agent(config_path, db_path, environ)
    config: dict[str, Any] = {}
    cfg_path = None
    base_dir = Path.cwd()
    if config_path is not None:
        cfg_path = Path(config_path).expanduser().resolve()
        config = read_config(cfg_path)
        base_dir = cfg_path.parent
    if db_path is not None and is_postgres_url(str(db_path)):
        url = str(db_path)
    elif db_path is not None:
        url = _sqlite_url(Path(db_path).expanduser())
    else:
        url = locate_database(config, base_dir, environ)
    default = False
    log_base: Path | None = base_dir if cfg_path is not None else None  # where logs/ is looked for
    if cfg_path is not None:
        name = _config_name(config, cfg_path, agent)
    elif is_postgres_url(url):
        name, default = (agent, False) if agent else (unquote(urlsplit(url).path.lstrip("/")) or "postgres", True)
    else:
        db = Path(db_path).expanduser().absolute()
        beside = config_beside(db, environ)
        log_base = db.parent  # a bare database's logs are its own, not the current directory's
        if beside is not None:
            name = _config_name(beside[1], beside[0], agent)
            log_base = beside[0].parent
        elif agent is not None:
            name = agent
        else:
            name, default = (db.parent.name if db.stem == "sqlite" else db.stem) or db.stem, True
    env_path = _env_file(env_file, cfg_path)
    log_dir = None
    if log_base is not None:
        log_dir = Path(config["log_dir"]) if config.get("log_dir") else log_base / "logs"
        if not log_dir.is_absolute():
            log_dir = log_base / log_dir
    return AgentSource(name=name, config_path=cfg_path, config=config, database_url=url,
                       env_file=env_path,
                       log_dir=log_dir if log_dir is not None and log_dir.is_dir() else None, name_is_default=default)
