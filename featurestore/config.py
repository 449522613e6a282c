"""Configuration: built-in defaults, a YAML file, ``FEATURESTORE_*`` environment variables.

Precedence, lowest first:

1. the built-in defaults (``DEFAULTS`` below; ``conf/featurestore.yaml`` documents the same values),
2. one YAML file: the explicit ``path`` argument, else ``$FEATURESTORE_CONFIG``, else
   ``./featurestore.yaml``, else ``./conf/featurestore.yaml`` (the first that exists),
3. environment variables ``FEATURESTORE_<SECTION>_<KEY>`` (``FEATURESTORE_SPARK_MASTER`` sets
   ``spark.master``),
4. explicit ``overrides`` passed by the caller (dotted keys).

Every key is checked against the schema: a misspelt key or a value of the wrong type is a
:class:`ConfigError` naming the key and where it came from.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from featurestore.errors import ConfigError

ENV_PREFIX = "FEATURESTORE_"
# Environment variables with the prefix that are not configuration keys (FEATURESTORE_HOME: the
# repository folder featurestore.spark finds pom.xml, jars/ and conf/ in; FEATURESTORE_LOG_LEVEL:
# the driver's log level under ./spark-submit.sh).
NON_KEY_ENV = {"FEATURESTORE_CONFIG", "FEATURESTORE_DEV_DB_DIR", "FEATURESTORE_HOME", "FEATURESTORE_LOG_LEVEL"}


@dataclass(frozen=True)
class Setting:
    """One configuration leaf: its type(s), default and a one-line description."""

    types: tuple[type, ...]
    default: Any
    doc: str
    secret: bool = False


def _s(types: type | tuple[type, ...], default: Any, doc: str, secret: bool = False) -> Setting:
    return Setting(types if isinstance(types, tuple) else (types,), default, doc, secret)


NONE = type(None)

SCHEMA: dict[str, Any] = {
    "warehouse": _s(str, "./warehouse", "Root folder of all Hudi tables and training datasets."),
    "store": _s(str, "default", "Feature store (project) used when a call, job or command names none "
                "(FEATURESTORE_STORE sets it too)."),
    "registry": {
        "url": _s((str, NONE), None, "SQLAlchemy URL of the registry; null = SQLite file under the warehouse."),
        "password": _s((str, NONE), None, "Registry password if not in the URL (prefer the env var).", True),
    },
    "online": {
        "url": _s((str, NONE), None, "Online store URL; null = SQLite file under the warehouse."),
        "password": _s((str, NONE), None, "Online store password if not in the URL (prefer the env var).", True),
        "batch_size": _s(int, 1000, "Rows per batched upsert statement."),
        "max_connections": _s(int, 4, "Upper bound on concurrent online-store writer connections."),
        "pool_size": _s(int, 8, "Connections in the feature-vector serving pool (callers wait when all are busy)."),
        "driver": _s(str, "auto", "MariaDB/MySQL client: auto (mariadb when installed), mariadb (MariaDB "
                     "Connector/Python, C) or mysql-connector (pure Python)."),
    },
    "spark": {
        "master": _s(str, "local[*]", "Spark master URL used by get_session()."),
        "app_name": _s(str, "featurestore", "Spark application name."),
        "shuffle_partitions": _s(int, 8, "spark.sql.shuffle.partitions."),
        "jars_dir": _s((str, NONE), None, "Folder of the JVM jars that ./bootstrap.sh fetches (pom.xml); "
                       "null = jars/ in the repository."),
        "jdbc_jar": _s((str, NONE), None, "MariaDB Connector/J jar in place of the jars folder's; "
                       "null = the jars folder's."),
        "ui": _s(bool, False, "Start the Spark web UI."),
        "conf": _s(dict, {}, "Extra Spark properties, applied last."),
    },
    "offline": {
        "format": _s(str, "HUDI", "Table format of new feature groups (time_travel_format): HUDI or DELTA."),
    },
    "hudi": {
        "lock_timeout_seconds": _s((int, float), 60, "How long a writer waits for the table lock."),
        "cleaner_commits_retained": _s(int, 10, "Default hoodie.cleaner.commits.retained."),
    },
    "server": {
        "api_key": _s((str, NONE), None, "One API key of the HTTP feature server, allowed on every feature store "
                      "(set it in FEATURESTORE_SERVER_API_KEY; it is never logged).", True),
        "api_keys": _s(list, [], "API keys of the HTTP feature server, kept as hashes: a list of {name, sha256, "
                       "stores} (`featurestore api-key new` makes one); stores: the feature stores the key may "
                       "read, [] or absent = every one."),
    },
    "alerts": {
        "webhook_url": _s((str, NONE), None, "URL called with a JSON body on rejections and job failures."),
    },
}


def _defaults(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: _defaults(v) if isinstance(v, Mapping) else copy.deepcopy(v.default) for k, v in schema.items()
    }


DEFAULTS: dict[str, Any] = _defaults(SCHEMA)


def _leaf_keys(schema: Mapping[str, Any], prefix: str = "") -> dict[str, Setting]:
    out: dict[str, Setting] = {}
    for k, v in schema.items():
        if isinstance(v, Mapping):
            out.update(_leaf_keys(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


LEAVES: dict[str, Setting] = _leaf_keys(SCHEMA)


def env_name(key: str) -> str:
    """The environment variable that sets a dotted configuration key."""
    return ENV_PREFIX + key.replace(".", "_").upper()


def _check_value(key: str, value: Any, source: str) -> Any:
    setting = LEAVES[key]
    # bool is an int in Python; keep "3" from passing as a bool and True from passing as an int.
    if isinstance(value, bool) and bool not in setting.types:
        ok = False
    else:
        ok = isinstance(value, setting.types)
    if not ok:
        names = " or ".join("null" if t is NONE else t.__name__ for t in setting.types)
        raise ConfigError(f"{source}: key '{key}' must be {names}, got {type(value).__name__}")
    return value


def _coerce_env(key: str, raw: str, var: str) -> Any:
    setting = LEAVES[key]
    if raw == "" and NONE in setting.types:
        return None
    if bool in setting.types:
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"environment variable {var}: '{raw}' is not a boolean")
    if int in setting.types:
        try:
            return int(raw)
        except ValueError:
            if float not in setting.types:
                raise ConfigError(f"environment variable {var}: '{raw}' is not an integer") from None
    if float in setting.types:
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"environment variable {var}: '{raw}' is not a number") from None
    if dict in setting.types or list in setting.types:
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            kind = "object" if dict in setting.types else "array"
            raise ConfigError(f"environment variable {var}: not a JSON {kind} ({exc})") from None
        return _check_value(key, value, f"environment variable {var}")
    return raw


def _merge_file(target: dict[str, Any], data: Any, schema: Mapping[str, Any], source: str, prefix: str = "") -> None:
    if not isinstance(data, Mapping):
        where = f"section '{prefix[:-1]}'" if prefix else "top level"
        raise ConfigError(f"{source}: {where} must be a mapping")
    for k, v in data.items():
        key = f"{prefix}{k}"
        if k not in schema:
            close = [c for c in LEAVES if c.split(".")[-1] == str(k).split(".")[-1]]
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"{source}: unknown key '{key}'{hint}")
        if isinstance(schema[k], Mapping):
            _merge_file(target[k], v, schema[k], source, f"{key}.")
        else:
            target[k] = _check_value(key, v, source)


def _set(tree: dict[str, Any], key: str, value: Any) -> None:
    *parents, last = key.split(".")
    for p in parents:
        tree = tree[p]
    tree[last] = value


def _get(tree: Mapping[str, Any], key: str) -> Any:
    for part in key.split("."):
        tree = tree[part]
    return tree


def find_config_file(path: str | os.PathLike[str] | None = None) -> Path | None:
    """The YAML file that :func:`load_config` would read, or None."""
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        return p
    env = os.environ.get("FEATURESTORE_CONFIG")
    if env:
        p = Path(env)
        if not p.is_file():
            raise ConfigError(f"FEATURESTORE_CONFIG points to a missing file: {p}")
        return p
    for candidate in (Path("featurestore.yaml"), Path("conf") / "featurestore.yaml"):
        if candidate.is_file():
            return candidate
    return None


@dataclass
class Config:
    """Resolved configuration. Read leaves with ``cfg.get("spark.master")`` or the properties."""

    values: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(DEFAULTS))
    source: Path | None = None

    def get(self, key: str) -> Any:
        """The value of a dotted key such as ``online.batch_size``."""
        if key not in LEAVES:
            raise ConfigError(f"unknown configuration key '{key}'")
        return _get(self.values, key)

    @property
    def warehouse(self) -> Path:
        """Absolute warehouse root."""
        return Path(self.values["warehouse"]).expanduser().resolve()

    @property
    def registry_url(self) -> str:
        """SQLAlchemy URL of the registry (default: SQLite file under the warehouse)."""
        return self.values["registry"]["url"] or f"sqlite:///{self.warehouse / 'registry.db'}"

    @property
    def online_url(self) -> str:
        """URL of the online store (default: SQLite file under the warehouse)."""
        return self.values["online"]["url"] or f"sqlite:///{self.warehouse / 'online.db'}"

    def redacted(self) -> dict[str, Any]:
        """The values with secrets and URL passwords masked, safe to print or log."""
        out = copy.deepcopy(self.values)
        for key, setting in LEAVES.items():
            value = _get(out, key)
            if setting.secret and value is not None:
                _set(out, key, "***")
            elif isinstance(value, str) and "://" in value:
                _set(out, key, redact_url(value))
        return out


def redact_url(url: str) -> str:
    """Mask the password of a ``scheme://user:password@host`` URL."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    if ":" in creds:
        creds = creds.split(":", 1)[0] + ":***"
    return f"{scheme}://{creds}@{host}"


def load_config(
    path: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Load the configuration: defaults, then a YAML file, then env vars, then ``overrides``."""
    environ = os.environ if environ is None else environ
    values = copy.deepcopy(DEFAULTS)
    source = find_config_file(path)
    if source is not None:
        try:
            data = yaml.safe_load(source.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: not valid YAML ({exc})") from None
        _merge_file(values, data, SCHEMA, str(source))
    by_env = {env_name(k): k for k in LEAVES}
    for var, raw in environ.items():
        if not var.startswith(ENV_PREFIX) or var in NON_KEY_ENV:
            continue
        if var not in by_env:
            raise ConfigError(f"environment variable {var} is not a configuration key")
        _set(values, by_env[var], _coerce_env(by_env[var], raw, var))
    for key, value in (overrides or {}).items():
        if key not in LEAVES:
            raise ConfigError(f"override: unknown key '{key}'")
        _set(values, key, _check_value(key, value, "override"))
    return Config(values, source)
