"""Write and read options, named by Hudi's own configuration keys, validated before any work."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from featurestore.hudi.bloom import OPTION_KEYS as BLOOM_KEYS
from featurestore.hudi.bloom import BloomSettings
from featurestore.hudi.errors import HudiOptionError

TABLE_NAME = "hoodie.table.name"
RECORD_KEY = "hoodie.datasource.write.recordkey.field"
PARTITION_PATH = "hoodie.datasource.write.partitionpath.field"
PRECOMBINE = "hoodie.datasource.write.precombine.field"
OPERATION = "hoodie.datasource.write.operation"
HIVE_STYLE = "hoodie.datasource.write.hive_style_partitioning"
URL_ENCODE = "hoodie.datasource.write.partitionpath.urlencode"
MAX_FILE_SIZE = "hoodie.parquet.max.file.size"
SMALL_FILE_LIMIT = "hoodie.parquet.small.file.limit"
COMMITS_RETAINED = "hoodie.cleaner.commits.retained"
KEEP_MAX_COMMITS = "hoodie.keep.max.commits"
TABLE_TYPE = "hoodie.datasource.write.table.type"
ENGINE = "engine"
LOCK_TIMEOUT = "featurestore.lock.timeout.seconds"
ROW_GROUP_ROWS = "featurestore.parquet.row.group.rows"
TABLE_VERSION = "hoodie.write.table.version"
EXTRA_METADATA_PREFIX = "featurestore.commit.metadata."

QUERY_TYPE = "hoodie.datasource.query.type"
AS_OF = "as.of.instant"
BEGIN = "hoodie.datasource.read.begin.instanttime"
END = "hoodie.datasource.read.end.instanttime"

OPERATIONS = ("upsert", "insert", "bulk_insert", "delete", "insert_overwrite", "insert_overwrite_table")
ENGINES = ("native", "spark-datasource")
QUERY_TYPES = ("snapshot", "incremental")

WRITE_KEYS = {
    TABLE_NAME, RECORD_KEY, PARTITION_PATH, PRECOMBINE, OPERATION, HIVE_STYLE, URL_ENCODE,
    MAX_FILE_SIZE, SMALL_FILE_LIMIT, COMMITS_RETAINED, KEEP_MAX_COMMITS, TABLE_TYPE, ENGINE, LOCK_TIMEOUT,
    ROW_GROUP_ROWS, TABLE_VERSION,
    *BLOOM_KEYS,
}
READ_KEYS = {QUERY_TYPE, AS_OF, BEGIN, END, ENGINE}

DEFAULT_MAX_FILE_SIZE = 120 * 1024 * 1024
DEFAULT_SMALL_FILE_LIMIT = 100 * 1024 * 1024
DEFAULT_COMMITS_RETAINED = 10
# Completed commits kept on the active timeline before older instants are archived (Hudi's default).
DEFAULT_KEEP_MAX_COMMITS = 30
DEFAULT_LOCK_TIMEOUT = 60.0
DEFAULT_ROW_GROUP_ROWS = 131_072
# Table versions the native engine writes: 9 is what Apache Hudi 1.x writes (the default for new
# tables), 6 what Hudi 0.14/0.15 readers need.
WRITE_TABLE_VERSIONS = (6, 9)
DEFAULT_WRITE_TABLE_VERSION = 9


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise HudiOptionError(f"option {key} must be true or false, got {value!r}")


def _choice(opts: Mapping[str, Any], key: str, default: str, allowed: tuple[str, ...]) -> str:
    """A lower-cased option value that must be one of ``allowed``."""
    value = str(opts.get(key, default)).strip().lower()
    if value not in allowed:
        raise HudiOptionError(f"option {key}: unknown value {value!r}; use one of {', '.join(allowed)}")
    return value


def _positive_int(key: str, value: Any, allow_zero: bool = False) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise HudiOptionError(f"option {key} must be an integer, got {value!r}") from None
    if number < 0 or (number == 0 and not allow_zero):
        raise HudiOptionError(f"option {key} must be {'>= 0' if allow_zero else '> 0'}, got {number}")
    return number


def _fields(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        parts = [str(v).strip() for v in value]
    else:
        parts = [p.strip() for p in str(value).split(",")]
    return tuple(p for p in parts if p)


@dataclass(frozen=True)
class WriteOptions:
    """Validated write options."""

    table_name: str
    record_key_fields: tuple[str, ...]
    partition_fields: tuple[str, ...]
    precombine_field: str | None
    operation: str
    hive_style: bool
    url_encode: bool
    max_file_size: int
    small_file_limit: int
    commits_retained: int
    engine: str
    lock_timeout: float
    row_group_rows: int
    extra_metadata: dict[str, str]
    raw: dict[str, str]
    # None: a new table gets DEFAULT_WRITE_TABLE_VERSION, an existing one keeps its own.
    table_version: int | None = None
    # the record-key bloom filter written into every base file's footer (Hudi's BLOOM index reads it)
    bloom: BloomSettings = BloomSettings()
    keep_max_commits: int = DEFAULT_KEEP_MAX_COMMITS

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> WriteOptions:
        """Validate ``options``; an unknown key or bad value is a :class:`HudiOptionError`."""
        opts = {str(k): v for k, v in options.items()}
        extra = {k[len(EXTRA_METADATA_PREFIX):]: str(v) for k, v in opts.items()
                 if k.startswith(EXTRA_METADATA_PREFIX)}
        unknown = sorted(k for k in opts if k not in WRITE_KEYS and not k.startswith(EXTRA_METADATA_PREFIX))
        if unknown:
            raise HudiOptionError(
                f"unknown write option(s): {', '.join(unknown)}; known: {', '.join(sorted(WRITE_KEYS))}")
        name = str(opts.get(TABLE_NAME) or "").strip()
        if not name:
            raise HudiOptionError(f"option {TABLE_NAME} is required")
        if not name.replace("_", "").isalnum():
            raise HudiOptionError(f"option {TABLE_NAME} must be letters, digits and underscores, got {name!r}")
        keys = _fields(opts.get(RECORD_KEY))
        if not keys:
            raise HudiOptionError(f"option {RECORD_KEY} is required (one or several comma-separated columns)")
        operation = _choice(opts, OPERATION, "upsert", OPERATIONS)
        engine = _choice(opts, ENGINE, "native", ENGINES)
        table_type = str(opts.get(TABLE_TYPE, "COPY_ON_WRITE")).upper()
        if table_type != "COPY_ON_WRITE":
            raise HudiOptionError(f"option {TABLE_TYPE}: only COPY_ON_WRITE tables are written, got {table_type!r}")
        precombine = str(opts.get(PRECOMBINE) or "").strip() or None
        try:
            lock_timeout = float(opts.get(LOCK_TIMEOUT, DEFAULT_LOCK_TIMEOUT))
        except ValueError:
            raise HudiOptionError(f"option {LOCK_TIMEOUT} must be a number of seconds") from None
        table_version = None
        if opts.get(TABLE_VERSION) not in (None, ""):
            text = str(opts[TABLE_VERSION]).strip()
            if text not in {str(v) for v in WRITE_TABLE_VERSIONS}:
                raise HudiOptionError(
                    f"option {TABLE_VERSION}: the native engine writes table versions "
                    f"{' and '.join(map(str, WRITE_TABLE_VERSIONS))}, got {text!r}")
            table_version = int(text)
        commits_retained = _positive_int(COMMITS_RETAINED, opts.get(COMMITS_RETAINED, DEFAULT_COMMITS_RETAINED))
        keep_max = _positive_int(KEEP_MAX_COMMITS, opts.get(KEEP_MAX_COMMITS, max(DEFAULT_KEEP_MAX_COMMITS,
                                                                                    commits_retained + 1)))
        if keep_max <= commits_retained:
            # as Hudi: archiving a commit the cleaner still retains would hide file versions readers may ask for
            raise HudiOptionError(f"option {KEEP_MAX_COMMITS} ({keep_max}) must be greater than "
                                  f"{COMMITS_RETAINED} ({commits_retained})")
        return cls(
            table_name=name,
            record_key_fields=keys,
            partition_fields=_fields(opts.get(PARTITION_PATH)),
            precombine_field=precombine,
            operation=operation,
            hive_style=_bool(HIVE_STYLE, opts.get(HIVE_STYLE, False)),
            url_encode=_bool(URL_ENCODE, opts.get(URL_ENCODE, False)),
            max_file_size=_positive_int(MAX_FILE_SIZE, opts.get(MAX_FILE_SIZE, DEFAULT_MAX_FILE_SIZE)),
            small_file_limit=_positive_int(SMALL_FILE_LIMIT, opts.get(SMALL_FILE_LIMIT, DEFAULT_SMALL_FILE_LIMIT),
                                           allow_zero=True),
            commits_retained=commits_retained,
            keep_max_commits=keep_max,
            engine=engine,
            lock_timeout=lock_timeout,
            row_group_rows=_positive_int(ROW_GROUP_ROWS, opts.get(ROW_GROUP_ROWS, DEFAULT_ROW_GROUP_ROWS)),
            extra_metadata=extra,
            raw={k: str(v) for k, v in opts.items()},
            table_version=table_version,
            bloom=BloomSettings.from_options(opts),
        )


@dataclass(frozen=True)
class ReadOptions:
    """Validated read options."""

    query_type: str
    as_of: str | None
    begin: str | None
    end: str | None
    engine: str

    @classmethod
    def parse(cls, options: Mapping[str, Any] | None) -> ReadOptions:
        """Validate ``options``; an unknown key or bad value is a :class:`HudiOptionError`."""
        opts = {str(k): v for k, v in (options or {}).items()}
        unknown = sorted(k for k in opts if k not in READ_KEYS)
        if unknown:
            raise HudiOptionError(
                f"unknown read option(s): {', '.join(unknown)}; known: {', '.join(sorted(READ_KEYS))}")
        query_type = _choice(opts, QUERY_TYPE, "snapshot", QUERY_TYPES)
        engine = _choice(opts, ENGINE, "native", ENGINES)
        begin = str(opts[BEGIN]) if opts.get(BEGIN) not in (None, "") else None
        end = str(opts[END]) if opts.get(END) not in (None, "") else None
        as_of = str(opts[AS_OF]) if opts.get(AS_OF) not in (None, "") else None
        if query_type == "incremental":
            if begin is None:
                raise HudiOptionError(f"an incremental read needs option {BEGIN}")
            if as_of is not None:
                raise HudiOptionError(f"option {AS_OF} applies to snapshot reads, not incremental ones")
        elif begin is not None or end is not None:
            raise HudiOptionError(f"options {BEGIN}/{END} need {QUERY_TYPE}=incremental")
        return cls(query_type, as_of, begin, end, engine)
