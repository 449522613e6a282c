"""The record-key bloom filter in our base files' footers, against Apache Hudi 1.2's own classes (the
reference JVM): for many key sets and settings our serialized filter is Hudi's ``serializeToString()``
character for character; every base file our engine writes (bulk insert, spliced upserts with and
without the stored filter, a whole-file rewrite) has a footer filter Hudi's own reader finds every
stored key in; and Apache Hudi upserting into our tables with its ``BLOOM`` and ``GLOBAL_BLOOM``
indexes updates the existing keys instead of inserting duplicates."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hudi_helpers import norm, rows_of_spark

from featurestore import hudi
from featurestore.hudi import bloom
from featurestore.hudi.bloom import BloomFilter, BloomSettings
from featurestore.hudi.options import WriteOptions

SCHEMA = "id string, region string, v double, ts timestamp"
COLS = ["id", "region", "v", "ts"]
T0 = dt.datetime(2024, 1, 1)
HUDI_OPTIONS = {"hoodie.record.merge.mode": "EVENT_TIME_ORDERING", "hoodie.upsert.shuffle.parallelism": 1,
                "hoodie.insert.shuffle.parallelism": 1, "hoodie.bulkinsert.shuffle.parallelism": 1,
                "hoodie.delete.shuffle.parallelism": 1}
SMALL = BloomSettings(num_entries=100, fpp=0.01, max_entries=1000)

KEY_SETS = {
    "empty": ([], BloomSettings()),
    "one key": (["k"], BloomSettings()),
    "ascii": ([f"key{i}" for i in range(500)], BloomSettings()),
    "unicode": (["é", "ü" * 3, "日本語", "ключ-7", "🙂", "a\u00ffb", "Ωmega", "\u0080", "x€"], BloomSettings()),
    "long keys": ([("x" * 1000) + str(i) for i in range(20)] + ["ü" * 333, "🙂" * 101], BloomSettings()),
    "mixed lengths": ([("abcdefgh" * 9)[:n] for n in range(1, 72)] + [f"{i:x}" for i in range(0, 5000, 37)],
                      BloomSettings(fpp=0.05)),
    "composite keys": ([f"id:{i},part:{'ab'[i % 2]}" for i in range(300)], BloomSettings()),
    "grows rows": ([f"g{i}" for i in range(350)], SMALL),
    "reaches the bound": ([f"b{i}" for i in range(1000)], BloomSettings(num_entries=100, fpp=0.01, max_entries=250)),
    "num_entries above the bound": ([f"c{i}" for i in range(300)], BloomSettings(100, 0.001, 50)),
    "simple": ([f"s{i}" for i in range(300)], BloomSettings(100, 0.01, 1000, bloom.SIMPLE)),
    # Hudi's defaults: a second row after 60,000 keys, the bound (2 rows) after 120,000
    "defaults past the bound": ([f"user-{i:07d}" for i in range(130_000)], BloomSettings()),
}


def _hudi(reference_jvm, keys: list[str], settings: BloomSettings, probe: list[str] | None = None) -> dict:
    return reference_jvm.hudi_bloom(keys=keys, num_entries=settings.num_entries, fpp=settings.fpp,
                                    max_entries=settings.max_entries, type_code=settings.type_code, probe=probe)


@pytest.mark.parametrize("case", list(KEY_SETS))
def test_our_filter_is_hudis_string_for_the_same_keys(reference_jvm, case):
    keys, settings = KEY_SETS[case]
    ours = BloomFilter(settings)
    ours.add(pa.array(keys, pa.string()))
    text = ours.serialize()
    assert text == _hudi(reference_jvm, keys, settings)["serialized"]
    # Hudi reads our string back and finds the keys (a sample: the strings are equal anyway)
    absent = ["not-a-key", "zz-absent"]
    got = reference_jvm.hudi_bloom(serialized=text, type_code=settings.type_code, probe=keys[:50] + absent)
    assert got["contains"][:len(keys[:50])] == [True] * len(keys[:50])
    # and ours reads Hudi's (the splice path adds keys to a stored filter)
    footer = {bloom.FOOTER_KEY: text, **({bloom.TYPE_CODE_KEY: bloom.DYNAMIC} if settings.type_code == bloom.DYNAMIC
                                         else {})}
    assert ours.footer() == footer
    back = BloomFilter.from_footer(footer, settings)
    assert back is not None and back.serialize() == text
    assert back.might_contain(pa.array(keys, pa.string())).all()


def test_keys_added_in_several_calls_fill_the_rows_as_one_call_does(reference_jvm):
    keys = [f"chunk-{i}" for i in range(420)]
    ours = BloomFilter(BloomSettings(num_entries=100, fpp=0.01, max_entries=300))
    for start, stop in [(0, 7), (7, 100), (100, 101), (101, 299), (299, 301), (301, 420)]:
        ours.add(pa.array(keys[start:stop]))
    assert ours.serialize() == _hudi(reference_jvm, keys, ours.settings)["serialized"]


def test_settings_are_hudis_options_with_hudis_defaults():
    assert BloomSettings.from_options({}) == BloomSettings(60_000, 0.000000001, 100_000, "DYNAMIC_V0")
    assert BloomSettings.from_options({
        "hoodie.index.bloom.num_entries": "500", "hoodie.index.bloom.fpp": "0.001",
        "hoodie.bloom.index.filter.dynamic.max.entries": 2000, "hoodie.bloom.index.filter.type": "simple",
    }) == BloomSettings(500, 0.001, 2000, "SIMPLE")
    base = {"hoodie.table.name": "t", "hoodie.datasource.write.recordkey.field": "id"}
    assert WriteOptions.parse({**base, "hoodie.index.bloom.num_entries": "7"}).bloom.num_entries == 7
    for key, value in [("hoodie.bloom.index.filter.type", "CUCKOO"), ("hoodie.index.bloom.fpp", "1.5"),
                       ("hoodie.index.bloom.num_entries", "0"), ("hoodie.index.bloom.num_entries", "many"),
                       ("hoodie.bloom.index.filter.dynamic.max.entries", "-1")]:
        with pytest.raises(hudi.HudiOptionError, match=key.replace(".", r"\.")):
            WriteOptions.parse({**base, key: value})
    with pytest.raises(hudi.HudiOptionError, match="bits"):
        BloomSettings.from_options({"hoodie.index.bloom.num_entries": 2**30})


# -- the base files our engine writes -------------------------------------------------------------

def _row(i: int, hour: int, v: float) -> tuple:
    return (f"user-{i:04d}", "eu" if i % 3 else "us", v, T0 + dt.timedelta(hours=hour))


def _latest_files(path: str) -> dict[str, Path]:
    latest: dict[str, Path] = {}
    for p in Path(path).glob("*/*.parquet"):
        fid = p.name.split("_")[0]
        if fid not in latest or p.name.split("_")[-1] > latest[fid].name.split("_")[-1]:
            latest[fid] = p
    return latest


def _chunk_bytes(path: Path, column: str) -> list[bytes]:
    """The encoded bytes of one column's chunk in each row group."""
    meta, raw = pq.read_metadata(path), path.read_bytes()
    index = meta.schema.names.index(column)
    out = []
    for g in range(meta.num_row_groups):
        col = meta.row_group(g).column(index)
        start = col.dictionary_page_offset if col.has_dictionary_page else col.data_page_offset
        out.append(raw[start:start + col.total_compressed_size])
    return out


def _hudi_finds_every_key(reference_jvm, path: str) -> dict[str, str]:
    """Hudi's footer reader gives every latest base file a filter holding each of its stored keys, of
    the type our footer names; the type of each file (by name)."""
    absent = [f"absent-{i}" for i in range(5)]
    types = {}
    for f in _latest_files(path).values():
        keys = pq.read_table(f, columns=["_hoodie_record_key"]).column(0).to_pylist()
        got = reference_jvm.hudi_bloom(parquet=str(f), probe=keys + absent)
        footer = pq.read_metadata(f).metadata
        assert got["type_code"] == footer.get(b"hoodie_bloom_filter_type_code", b"SIMPLE").decode(), f
        assert got["contains"][:len(keys)] == [True] * len(keys), f
        assert got["contains"][len(keys):] == [False] * len(absent), f  # at fpp 1e-9: certainly absent
        types[f.name] = got["type_code"]
    return types


def test_every_base_file_our_engine_writes_has_a_filter_hudi_finds_every_key_in(spark, reference_jvm, tmp_path):
    path = str(tmp_path / "native_bloom")
    opts = {"hoodie.table.name": "native_bloom", "hoodie.datasource.write.recordkey.field": "id",
            "hoodie.datasource.write.partitionpath.field": "region", "hoodie.datasource.write.precombine.field": "ts",
            "featurestore.parquet.row.group.rows": "8"}

    def write(rows: list[tuple], **extra: str) -> list[Path]:
        """Write; the base files the commit wrote."""
        instant = hudi.write(spark.createDataFrame(rows, SCHEMA), path, {**opts, **extra}).instant_time
        return [f for f in _latest_files(path).values() if f.stem.endswith(instant)]

    written = write([_row(i, 0, float(i)) for i in range(120)], **{"hoodie.datasource.write.operation": "bulk_insert"})
    first = _latest_files(path)
    assert sorted(written) == sorted(first.values())
    for f in first.values():
        # a fresh file's filter is exactly the one Hudi builds from its keys in file order
        keys = pq.read_table(f, columns=["_hoodie_record_key"]).column(0).to_pylist()
        footer = pq.read_metadata(f).metadata
        assert footer[b"hoodie_bloom_filter_type_code"] == b"DYNAMIC_V0"
        assert footer[b"org.apache.hudi.bloomfilter"].decode() == _hudi(reference_jvm, keys, BloomSettings())[
            "serialized"]
    _hudi_finds_every_key(reference_jvm, path)

    # A narrow upsert (updates and new keys in both partitions): spliced, from the stored filters.
    written = write([_row(4, 5, -4.0), _row(6, 5, -6.0), _row(500, 5, 500.0), _row(501, 5, 501.0)])
    assert written
    for f in written:
        old = first[f.name.split("_")[0]]
        kept = set(_chunk_bytes(old, "v")) & set(_chunk_bytes(f, "v"))
        assert len(kept) >= 2, "the upsert copied the unchanged row groups"
    _hudi_finds_every_key(reference_jvm, path)

    # A spliced delete keeps the stored filter: the deleted key stays in it (allowed for a bloom filter).
    [holder] = write([_row(20, 5, 0.0)], **{"hoodie.datasource.write.operation": "delete"})
    assert "user-0020" not in pq.read_table(holder, columns=["_hoodie_record_key"]).column(0).to_pylist()
    assert reference_jvm.hudi_bloom(parquet=str(holder), probe=["user-0020"])["contains"] == [True]
    _hudi_finds_every_key(reference_jvm, path)

    # Other filter settings: the stored filters do not fit, so the copied keys are hashed anew.
    neighbour = pq.read_table(holder, columns=["_hoodie_record_key"]).column(0)[0].as_py()
    written = write([_row(7, 6, -7.0), _row(9, 6, -9.0), _row(502, 6, 502.0), _row(int(neighbour[5:]), 6, -1.0)],
                    **{"hoodie.index.bloom.num_entries": "1000"})
    assert holder.name.split("_")[0] in {f.name.split("_")[0] for f in written}
    [rebuilt] = [f for f in written if f.name.split("_")[0] == holder.name.split("_")[0]]
    assert len(set(_chunk_bytes(holder, "v")) & set(_chunk_bytes(rebuilt, "v"))) >= 2, "spliced, not rewritten"
    assert reference_jvm.hudi_bloom(parquet=str(rebuilt), probe=["user-0020"])["contains"] == [False]
    _hudi_finds_every_key(reference_jvm, path)
    sized = BloomFilter(BloomSettings(num_entries=1000)).serialize()
    for f in written:
        text = pq.read_metadata(f).metadata[b"org.apache.hudi.bloomfilter"].decode()
        assert len(text) == len(sized)  # a 1,000-entry filter now

    # SIMPLE filters (no type code in the footer: Hudi reads them as SIMPLE), and a delete.
    simple = {"hoodie.bloom.index.filter.type": "SIMPLE", "hoodie.index.bloom.num_entries": "1000"}
    written = write([_row(8, 7, -8.0), _row(12, 7, -12.0), _row(503, 7, 503.0)], **simple)
    written += write([_row(10, 8, 0.0), _row(15, 8, 0.0)], **simple, **{"hoodie.datasource.write.operation": "delete"})
    types = _hudi_finds_every_key(reference_jvm, path)
    assert {types[f.name] for f in written if f.name in types} == {bloom.SIMPLE}

    # Most row groups change: the files are rewritten whole, every key hashed again.
    write([_row(i, 9, float(-i)) for i in range(0, 120, 2)])
    assert set(_hudi_finds_every_key(reference_jvm, path).values()) == {bloom.DYNAMIC}


# -- Apache Hudi's BLOOM indexes upsert into our tables -----------------------------------------

def _model(rows: dict[str, tuple]) -> list[tuple]:
    return sorted((tuple(norm(v) for v in r) for r in rows.values()), key=repr)


def _readers_agree(spark, reference_jvm, path: str, expected: dict[str, tuple]) -> None:
    ours = rows_of_spark(hudi.read(spark, path), COLS)
    theirs = sorted((tuple(norm(v) for v in r) for r in reference_jvm.hudi_read(path, COLS)), key=repr)
    assert len({r[0] for r in ours}) == len(ours), "no key twice"
    assert ours == theirs == _model(expected)


@pytest.mark.parametrize("index_type", ["BLOOM", "GLOBAL_BLOOM"])
def test_apache_hudi_bloom_index_updates_the_keys_of_our_files(spark, reference_jvm, tmp_path, index_type):
    name = f"bloom_{index_type.lower()}"
    path = str(tmp_path / name)
    opts = {"hoodie.table.name": name, "hoodie.datasource.write.recordkey.field": "id",
            "hoodie.datasource.write.partitionpath.field": "region", "hoodie.datasource.write.precombine.field": "ts",
            "featurestore.parquet.row.group.rows": "8"}
    hudi_opts = {**HUDI_OPTIONS, "hoodie.index.type": index_type,
                 "hoodie.bloom.index.update.partition.path": "true"}
    expected: dict[str, tuple] = {}

    def native(rows: list[tuple], operation: str = "upsert") -> None:
        hudi.write(spark.createDataFrame(rows, SCHEMA), path, {**opts, "hoodie.datasource.write.operation": operation})
        expected.update({r[0]: r for r in rows})

    def apache(rows: list[tuple]) -> None:
        reference_jvm.hudi_write(path, SCHEMA, rows, "id", "upsert", "ts", "region", options=hudi_opts,
                                 table_name=name)
        expected.update({r[0]: r for r in rows})

    native([_row(i, 0, float(i)) for i in range(60)], "bulk_insert")
    # updates of keys in several of our files and row groups, and new keys
    apache([_row(i, 1, 100.0 + i) for i in (0, 1, 2, 3, 17, 30, 44, 59)] + [_row(i, 1, 1.0) for i in (60, 61, 62)])
    _readers_agree(spark, reference_jvm, path, expected)
    # our engine writes again (spliced into its files, whole into Hudi's), then Hudi updates those keys
    native([_row(i, 2, 200.0 + i) for i in (5, 60)] + [_row(70, 2, 70.0)])
    apache([_row(i, 3, 300.0 + i) for i in (5, 60, 70, 6)] + [_row(71, 3, 71.0)])
    _readers_agree(spark, reference_jvm, path, expected)
    if index_type == "GLOBAL_BLOOM":
        # a key arriving in another partition moves there: still one row for it
        moved = ("user-0010", "us" if _row(10, 0, 0)[1] == "eu" else "eu", 10.5, T0 + dt.timedelta(hours=4))
        apache([moved])
        _readers_agree(spark, reference_jvm, path, expected)
