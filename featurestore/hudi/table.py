"""The table's ``.hoodie/hoodie.properties``: reading (any version), creating (version 9, or 6 by
option), checking requested write options against it, and turning Hudi's metadata table off."""

from __future__ import annotations

import json
import os
import re
import shutil
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from featurestore.hudi.errors import HudiOptionError, HudiTableNotFound
from featurestore.hudi.keys import COMPLEX, NON_PARTITIONED, SIMPLE, KeySpec
from featurestore.hudi.options import DEFAULT_WRITE_TABLE_VERSION, TABLE_VERSION, WRITE_TABLE_VERSIONS, WriteOptions

HOODIE_DIR = ".hoodie"
PROPERTIES_FILE = "hoodie.properties"
METADATA_DIR = "metadata"
DATABASE = "default"
READ_TABLE_VERSIONS = (6, 8, 9)
# Version 9 names the key generator by type (hoodie.table.keygenerator.type), not by class.
_KEYGEN_TYPES = {SIMPLE: "SIMPLE", COMPLEX: "COMPLEX", NON_PARTITIONED: "NON_PARTITIONED"}
METADATA_PARTITION_KEYS = ("hoodie.table.metadata.partitions", "hoodie.table.metadata.partitions.inflight")

_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _unescape(value: str) -> str:
    """Undo ``java.util.Properties`` escaping (``\\:``, ``\\=``, ``\\\\``, ``\\uXXXX``)."""
    value = _UNICODE_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), value)
    out, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            out.append({"t": "\t", "n": "\n", "r": "\r", "f": "\f"}.get(nxt, nxt))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def parse_properties(text: str) -> dict[str, str]:
    """Parse a Java properties file as Hudi writes it (one ``key=value`` per line)."""
    props: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "!")):
            continue
        m = re.match(r"((?:\\.|[^=:\s\\])+)\s*[=:]?\s*(.*)$", line)
        if m:
            props[_unescape(m.group(1))] = _unescape(m.group(2))
    return props


def table_checksum(table_name: str, database: str = DATABASE) -> int:
    """``hoodie.table.checksum``: CRC32 of ``"<database>.<table>"`` as Hudi computes it."""
    return zlib.crc32(f"{database}.{table_name}".encode())


@dataclass(frozen=True)
class TableConfig:
    """What ``hoodie.properties`` says about a table."""

    base_path: str
    props: dict[str, str]

    @property
    def name(self) -> str:
        """``hoodie.table.name``."""
        return self.props["hoodie.table.name"]

    @property
    def version(self) -> int:
        """``hoodie.table.version``."""
        return int(self.props.get("hoodie.table.version", "0"))

    @property
    def layout(self) -> int:
        """Timeline layout: 2 from table version 8 on, else 1."""
        return 2 if self.version >= 8 else 1

    @property
    def table_type(self) -> str:
        """``COPY_ON_WRITE`` or ``MERGE_ON_READ``."""
        return self.props.get("hoodie.table.type", "COPY_ON_WRITE").upper()

    @property
    def record_key_fields(self) -> tuple[str, ...]:
        """``hoodie.table.recordkey.fields``."""
        return tuple(f for f in self.props.get("hoodie.table.recordkey.fields", "").split(",") if f)

    @property
    def partition_fields(self) -> tuple[str, ...]:
        """``hoodie.table.partition.fields`` (empty for a non-partitioned table)."""
        if (self.props.get("hoodie.table.keygenerator.class") == NON_PARTITIONED
                or self.props.get("hoodie.table.keygenerator.type", "").upper() == "NON_PARTITIONED"):
            return ()
        return tuple(f for f in self.props.get("hoodie.table.partition.fields", "").split(",") if f)

    @property
    def precombine_field(self) -> str | None:
        """``hoodie.table.precombine.field`` (``ordering.fields`` in version 9)."""
        return self.props.get("hoodie.table.precombine.field") or self.props.get("hoodie.table.ordering.fields") or None

    @property
    def hive_style(self) -> bool:
        """``hoodie.datasource.write.hive_style_partitioning``."""
        return self.props.get("hoodie.datasource.write.hive_style_partitioning", "false").lower() == "true"

    @property
    def url_encode(self) -> bool:
        """``hoodie.datasource.write.partitionpath.urlencode``."""
        return self.props.get("hoodie.datasource.write.partitionpath.urlencode", "false").lower() == "true"

    @property
    def populate_meta_fields(self) -> bool:
        """``hoodie.populate.meta.fields`` (default true)."""
        return self.props.get("hoodie.populate.meta.fields", "true").lower() == "true"

    @property
    def key_spec(self) -> KeySpec:
        """How this table forms record keys and partition paths."""
        return KeySpec(self.record_key_fields, self.partition_fields, self.hive_style, self.url_encode)

    @property
    def create_schema(self) -> dict | None:
        """``hoodie.table.create.schema`` as parsed Avro JSON, if present."""
        raw = self.props.get("hoodie.table.create.schema")
        return json.loads(raw) if raw else None

    def check_writable(self) -> None:
        """Raise :class:`HudiOptionError` unless the native engine can write this table's version."""
        if self.version not in WRITE_TABLE_VERSIONS:
            raise HudiOptionError(
                f"table {self.base_path} has table version {self.version}; the native engine writes table "
                f"versions {' and '.join(map(str, WRITE_TABLE_VERSIONS))} only and never upgrades or downgrades "
                f"a table (it reads versions {', '.join(map(str, READ_TABLE_VERSIONS))}); nothing was written"
            )

    def check_write_options(self, opts: WriteOptions) -> None:
        """Raise :class:`HudiOptionError` naming every option that contradicts this table."""
        self.check_writable()
        if opts.table_version is not None and opts.table_version != self.version:
            raise HudiOptionError(
                f"option {TABLE_VERSION}={opts.table_version} but the table at {self.base_path} has table version "
                f"{self.version}; the native engine never upgrades or downgrades a table")
        if self.table_type != "COPY_ON_WRITE":
            raise HudiOptionError(f"table {self.base_path} is {self.table_type}; only COPY_ON_WRITE tables are written")
        mismatches = []
        pairs = [
            ("hoodie.table.name", opts.table_name, self.name),
            ("hoodie.datasource.write.recordkey.field", ",".join(opts.record_key_fields),
             ",".join(self.record_key_fields)),
            ("hoodie.datasource.write.partitionpath.field", ",".join(opts.partition_fields),
             ",".join(self.partition_fields)),
            ("hoodie.datasource.write.hive_style_partitioning", str(opts.hive_style).lower(),
             str(self.hive_style).lower()),
            ("hoodie.datasource.write.partitionpath.urlencode", str(opts.url_encode).lower(),
             str(self.url_encode).lower()),
        ]
        if opts.precombine_field is not None:
            pairs.append(("hoodie.datasource.write.precombine.field", opts.precombine_field,
                          self.precombine_field or ""))
        for key, requested, existing in pairs:
            if requested != existing:
                mismatches.append(f"{key}={requested!r} but the table has {existing!r}")
        if mismatches:
            raise HudiOptionError(
                f"options contradict the existing table at {self.base_path}: " + "; ".join(mismatches))


def hoodie_dir(base_path: str) -> Path:
    """``<base_path>/.hoodie``."""
    return Path(base_path) / HOODIE_DIR


def table_exists(base_path: str) -> bool:
    """Whether ``base_path`` holds a Hudi table."""
    return (hoodie_dir(base_path) / PROPERTIES_FILE).is_file()


def load_table_config(base_path: str) -> TableConfig:
    """Read ``hoodie.properties``; :class:`HudiTableNotFound` if there is no table."""
    path = hoodie_dir(base_path) / PROPERTIES_FILE
    if not path.is_file():
        raise HudiTableNotFound(f"no Hudi table at {base_path} (missing {HOODIE_DIR}/{PROPERTIES_FILE})")
    props = parse_properties(path.read_text(encoding="utf-8"))
    config = TableConfig(str(base_path), props)
    if config.version not in READ_TABLE_VERSIONS:
        raise HudiOptionError(
            f"table {base_path} has table version {config.version} (hoodie.table.version), which the native "
            f"engine neither reads nor writes (it reads versions {', '.join(map(str, READ_TABLE_VERSIONS))} and writes "
            f"{' and '.join(map(str, WRITE_TABLE_VERSIONS))})")
    return config


def create_table(base_path: str, opts: WriteOptions, create_schema: dict) -> TableConfig:
    """Create ``.hoodie/`` with ``hoodie.properties`` for a new copy-on-write table of the version
    ``opts`` asks for (default 9, as Apache Hudi 1.x creates them; or 6)."""
    version = opts.table_version or DEFAULT_WRITE_TABLE_VERSION
    root = hoodie_dir(base_path)
    subs = [".aux/.bootstrap/.partitions", ".aux/.bootstrap/.fileids", ".schema", ".temp"]
    subs.append("timeline/history" if version >= 8 else "archived")
    for sub in subs:
        (root / sub).mkdir(parents=True, exist_ok=True)
    spec = KeySpec(opts.record_key_fields, opts.partition_fields, opts.hive_style, opts.url_encode)
    props = {
        "hoodie.table.name": opts.table_name,
        "hoodie.database.name": DATABASE,
        "hoodie.table.type": "COPY_ON_WRITE",
        "hoodie.table.version": str(version),
    }
    if version >= 8:
        props.update({
            "hoodie.table.initial.version": str(version),
            "hoodie.timeline.layout.version": "2",
            "hoodie.timeline.path": "timeline",
            "hoodie.timeline.history.path": "history",
            "hoodie.table.format": "native",
            # how Hudi 1.x merges an incoming record with the stored one: what this engine does
            "hoodie.record.merge.mode": "EVENT_TIME_ORDERING" if opts.precombine_field else "COMMIT_TIME_ORDERING",
            "hoodie.table.keygenerator.type": _KEYGEN_TYPES[spec.key_generator_class],
        })
    else:
        props["hoodie.timeline.layout.version"] = "1"
    props.update({
        "hoodie.table.base.file.format": "PARQUET",
        "hoodie.table.recordkey.fields": ",".join(opts.record_key_fields),
        "hoodie.table.keygenerator.class": spec.key_generator_class,
        "hoodie.datasource.write.hive_style_partitioning": str(opts.hive_style).lower(),
        "hoodie.datasource.write.partitionpath.urlencode": str(opts.url_encode).lower(),
        "hoodie.datasource.write.drop.partition.columns": "false",
        "hoodie.populate.meta.fields": "true",
        "hoodie.table.timeline.timezone": "UTC",
        "hoodie.archivelog.folder": "archived",
        "hoodie.table.create.schema": json.dumps(create_schema, separators=(",", ":")),
    })
    if opts.partition_fields:
        props["hoodie.table.partition.fields"] = ",".join(opts.partition_fields)
    if opts.precombine_field:
        # version 9 calls the ordering field(s) hoodie.table.ordering.fields
        props["hoodie.table.ordering.fields" if version >= 9 else "hoodie.table.precombine.field"] = \
            opts.precombine_field
    props["hoodie.table.checksum"] = str(table_checksum(opts.table_name))
    write_properties(root / PROPERTIES_FILE, props)
    return TableConfig(str(base_path), props)


def disable_metadata_table(config: TableConfig) -> TableConfig:
    """Turn Hudi's metadata table off as Hudi does when it is disabled: no metadata partition left in
    ``hoodie.properties`` (readers then list files instead), then ``.hoodie/metadata`` removed.

    The native engine does not maintain the metadata table; left on, it would list the files of
    the commits before ours only. Hudi builds it anew from the file listing when it next writes
    with the metadata table enabled. Returns the (possibly) updated configuration.
    """
    folder = hoodie_dir(config.base_path) / METADATA_DIR
    props = dict(config.props)
    if any(props.get(k) for k in METADATA_PARTITION_KEYS):
        for key in METADATA_PARTITION_KEYS:
            if key in props:
                props[key] = ""
        # properties first: from then on no reader uses the metadata table, so removing it is safe
        write_properties(hoodie_dir(config.base_path) / PROPERTIES_FILE, props)
    if folder.exists():
        shutil.rmtree(folder)
    return TableConfig(config.base_path, props)


def write_properties(path: Path, props: dict[str, str]) -> None:
    """Write a properties file atomically: plain ``key=value`` lines, the checksum last.

    Values are not escaped: hudi-rs does not unescape them, and Java's loader accepts an
    unescaped ``:`` or ``=`` after the first separator.
    """
    now = datetime.now(UTC)
    lines = ["#Properties saved on " + now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
             "#" + now.strftime("%a %b %d %H:%M:%S UTC %Y")]
    lines += [f"{k}={v}" for k, v in props.items() if k != "hoodie.table.checksum"]
    if "hoodie.table.checksum" in props:
        lines.append(f"hoodie.table.checksum={props['hoodie.table.checksum']}")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # A Hudi writer on Hadoop's local file system leaves a checksum beside the file
    # (.hoodie.properties.crc); against new contents it would make Hudi's reads fail. Without it
    # Hadoop does not verify. Removed first, so no reader ever sees new contents with the old checksum.
    path.with_name(f".{path.name}.crc").unlink(missing_ok=True)
    os.replace(tmp, path)
