"""Our Hudi reader against real Apache Hudi tables (written by Spark + Hudi), hudi-rs as the oracle.

Every zip in ``../shared/fixtures/hudi/`` (see its README) is unzipped and read with
:func:`featurestore.hudi.read`: the snapshot, a time-travel read at every completed commit, an
incremental read between each pair of consecutive commits and one from before the first commit to
the latest. Each result is compared, as a multiset of rows, with what hudi-rs (the ``hudi``
package) reads for the same query. Windows of version 8/9 tables use completion times, as the
README prescribes; time travel uses requested times.

The fixtures folder is required: without it these tests fail, they never skip.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import math
import re
import zipfile
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from featurestore import hudi
from featurestore.hudi.table import load_table_config

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES_DIR = REPO_ROOT.parent / "shared" / "fixtures" / "hudi"
README = FIXTURES_DIR / "README.md"
ZIPS = sorted(p.name for p in FIXTURES_DIR.glob("*.zip")) if FIXTURES_DIR.is_dir() else []
MISSING = "<fixtures folder missing>"

COMMIT_ACTIONS = ("commit", "deltacommit", "replacecommit")
META_COLUMNS = ["_hoodie_commit_time", "_hoodie_commit_seqno", "_hoodie_record_key", "_hoodie_partition_path",
                "_hoodie_file_name"]
BEFORE_FIRST = "00000000000000000"
QUERY_TYPE = "hoodie.datasource.query.type"
BEGIN = "hoodie.datasource.read.begin.instanttime"
END = "hoodie.datasource.read.end.instanttime"
_README_ROW = re.compile(
    r"^\|\s*(?P<zip>[\w.-]+\.zip)\s*\|\s*(?P<root>[\w.-]+)/\s*\|\s*(?P<type>[A-Z_]+)\s*\|\s*(?P<version>\d+)\s*"
    r"\|\s*(?P<rows>\d+)\s*\|\s*(?P<instants>\d+)\s*\|$")


def _require_fixtures() -> None:
    if not FIXTURES_DIR.is_dir():
        pytest.fail(f"Hudi fixtures folder {FIXTURES_DIR} is missing (CI has ../shared/ next to the project)")
    if not ZIPS:
        pytest.fail(f"no *.zip in the Hudi fixtures folder {FIXTURES_DIR}")


@functools.cache
def _readme_table() -> dict[str, dict[str, Any]]:
    """The README's table: zip name -> table root, type, version, snapshot rows, completed instants."""
    out = {}
    for line in README.read_text(encoding="utf-8").splitlines():
        m = _README_ROW.match(line.strip())
        if m:
            out[m["zip"]] = {"root": m["root"], "type": m["type"], "version": int(m["version"]),
                             "rows": int(m["rows"]), "instants": int(m["instants"])}
    return out


def _unzip(zip_path: Path, dest: Path) -> None:
    with zipfile.ZipFile(zip_path) as zf:
        for member in zf.infolist():
            if member.filename.startswith("__MACOSX/") or "/__MACOSX/" in member.filename:
                continue
            zf.extract(member, dest)


# -- row normalisation ---------------------------------------------------------------------------

def _norm(value: Any) -> Any:
    """A hashable, representation-independent form of a value from ``to_pylist``/``asDict``.

    Structs (dicts) and maps (dicts or lists of key/value tuples) become sorted tuples of pairs;
    lists become tuples; aware timestamps become naive UTC; decimals lose trailing zeros; NaN is
    a marker (NaN != NaN); bytes-likes become bytes. Integer widths need nothing: 1 == 1.
    """
    if isinstance(value, Mapping):
        return ("{}",) + tuple(sorted(((_norm(k), _norm(v)) for k, v in value.items()), key=repr))
    if isinstance(value, list | tuple):
        if value and all(isinstance(x, tuple) and len(x) == 2 for x in value):  # an Arrow map
            return ("{}",) + tuple(sorted(((_norm(k), _norm(v)) for k, v in value), key=repr))
        return tuple(_norm(x) for x in value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value
    if isinstance(value, decimal.Decimal):
        return value.normalize()
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    return value


def _rows(table: pa.Table | None, columns: list[str]) -> Counter:
    if table is None:
        return Counter()
    return Counter(tuple(_norm(r[c]) for c in columns) for r in table.select(columns).to_pylist())


def _compare(label: str, expected: pa.Table | None, actual: pa.Table) -> list[str]:
    """Problems (empty if none) between the oracle's rows and ours."""
    if expected is None:  # hudi-rs returns no batches at all for an empty result
        return [] if actual.num_rows == 0 else [f"{label}: hudi-rs reads no rows, ours reads {actual.num_rows}"]
    problems = []
    want_cols, got_cols = set(expected.column_names), set(actual.column_names)
    if want_cols != got_cols:
        problems.append(f"{label}: columns differ: only hudi-rs {sorted(want_cols - got_cols)}, "
                        f"only ours {sorted(got_cols - want_cols)}")
    present_meta = [c for c in META_COLUMNS if c in actual.column_names]
    if actual.column_names[:len(present_meta)] != present_meta:
        problems.append(f"{label}: meta columns are not first: {actual.column_names}")
    columns = [c for c in expected.column_names if c in got_cols]
    want, got = _rows(expected, columns), _rows(actual, columns)
    if want != got:
        only_want, only_got = list((want - got).elements()), list((got - want).elements())
        problems.append(
            f"{label}: hudi-rs reads {expected.num_rows} rows, ours {actual.num_rows}; columns {columns}\n"
            + "".join(f"    only hudi-rs: {str(r)[:400]}\n" for r in only_want[:3])
            + "".join(f"    only ours:    {str(r)[:400]}\n" for r in only_got[:3]))
    return problems


# -- the tests -----------------------------------------------------------------------------------

def test_fixtures_present_and_listed_in_readme():
    _require_fixtures()
    assert README.is_file(), f"{README} is missing"
    listed = _readme_table()
    assert sorted(listed) == ZIPS, (
        f"README lists {sorted(set(listed) - set(ZIPS))} that are not there; "
        f"zips not in the README: {sorted(set(ZIPS) - set(listed))}")


@pytest.mark.parametrize("zip_name", ZIPS or [MISSING])
def test_reader_matches_hudi_rs(request, tmp_path_factory, zip_name):
    _require_fixtures()  # before starting Spark: a missing fixtures folder fails at once
    spark = request.getfixturevalue("spark")
    from hudi import HudiQueryType, HudiReadOptions, HudiTableBuilder

    info = _readme_table().get(zip_name)
    assert info is not None, f"{zip_name} is not in {README}"
    dest = tmp_path_factory.mktemp(zip_name.removesuffix(".zip"))
    _unzip(FIXTURES_DIR / zip_name, dest)
    root = dest / info["root"]
    assert (root / ".hoodie" / "hoodie.properties").is_file(), f"{zip_name}: no table at {info['root']}/"
    config = load_table_config(str(root))
    assert (config.table_type, config.version) == (info["type"], info["version"])

    oracle_table = HudiTableBuilder.from_base_uri(str(root)).build()

    def oracle(opts: HudiReadOptions) -> pa.Table | None:
        batches = oracle_table.read(opts)
        return pa.Table.from_batches(batches) if batches else None

    # The timeline: our completed commits are hudi-rs's, and as many as the README says.
    commits = [e for e in hudi.timeline(str(root)) if e["action"] in COMMIT_ACTIONS]
    rs_timeline = oracle_table.get_timeline()
    rs_commits = {(i.timestamp, i.action) for get in (rs_timeline.get_completed_commits,
                                                      rs_timeline.get_completed_deltacommits,
                                                      rs_timeline.get_completed_replacecommits) for i in get()}
    assert {(e["instant"], e["action"]) for e in commits} == rs_commits
    assert len(commits) == info["instants"]
    if config.version < 8:
        assert all(e["completion_time"] == e["instant"] for e in commits)

    # The *_lance_* tables keep their data in Lance base files; hudi-rs's file-group reader (which
    # our reader runs per file slice for v8/v9 tables) reads them, so they are compared like the rest.
    base_format = config.props.get("hoodie.table.base.file.format", "PARQUET").upper()
    assert base_format == ("LANCE" if "_lance_" in zip_name else "PARQUET")

    # Every query: (label, our options, hudi-rs options).
    queries: list[tuple[str, dict[str, str] | None, HudiReadOptions]] = [("snapshot", None, HudiReadOptions())]
    for e in commits:
        queries.append((f"as of {e['instant']} ({e['action']})", {"as.of.instant": e["instant"]},
                        HudiReadOptions().with_as_of_timestamp(e["instant"])))
    # Windows between consecutive commits, and one from before the first commit to the latest.
    # v8/v9 windows are matched against completion times; v6 instants complete at their own time.
    bounds = [e["completion_time"] if config.version >= 8 else e["instant"] for e in commits]
    windows = list(zip(bounds, bounds[1:], strict=False)) + ([(BEFORE_FIRST, bounds[-1])] if bounds else [])
    for begin, end in windows:
        queries.append((f"incremental ({begin}, {end}]", {QUERY_TYPE: "incremental", BEGIN: begin, END: end},
                        HudiReadOptions().with_query_type(HudiQueryType.Incremental)
                        .with_start_timestamp(begin).with_end_timestamp(end)))

    # Ours run two at a time: one read's Python-side planning and Arrow conversion overlap the
    # other's Spark job (a little faster on two cores). Each read is collected once.
    with ThreadPoolExecutor(max_workers=2) as pool:
        ours = pool.map(lambda q: hudi.read(spark, str(root), q[1]).toArrow(), queries)
        problems: list[str] = []
        for (label, _, rs_opts), actual in zip(queries, ours, strict=True):
            expected = oracle(rs_opts)
            if label == "snapshot":
                assert actual.num_rows == info["rows"], f"snapshot: {actual.num_rows} rows, README: {info['rows']}"
            problems += _compare(label, expected, actual)
    assert not problems, f"{zip_name} ({root}):\n" + "\n".join(problems)


@pytest.mark.parametrize("zip_name", ["cow_v6_nonpartitioned.zip", "cow_v9_txns_simple_nometa.zip"])
def test_unreadable_base_file_format_is_refused_not_read_as_empty(request, tmp_path, zip_name):
    """A table whose base files are neither Parquet nor Lance (ORC here) is an error naming the format."""
    _require_fixtures()
    spark = request.getfixturevalue("spark")
    info = _readme_table()[zip_name]
    _unzip(FIXTURES_DIR / zip_name, tmp_path)
    root = tmp_path / info["root"]
    props = root / ".hoodie" / "hoodie.properties"
    text = re.sub(r"(?m)^hoodie\.table\.base\.file\.format=.*\n", "", props.read_text(encoding="utf-8"))
    props.write_text(text + "hoodie.table.base.file.format=ORC\n", encoding="utf-8")
    with pytest.raises(hudi.HudiError, match="ORC"):
        hudi.read(spark, str(root))


def test_parquet_footer_codec_round_trips_java_written_files(tmp_path):
    """The footer codec that splices base files decodes and re-encodes the footers parquet-mr wrote
    (Java Hudi's base files) byte for byte, and refuses what is not plain parquet."""
    import struct

    from featurestore.hudi import parquet_splice

    _require_fixtures()
    checked = 0
    for zip_name in ZIPS:
        if "lance" in zip_name:
            continue
        dest = tmp_path / zip_name
        _unzip(FIXTURES_DIR / zip_name, dest)
        for path in sorted(dest.rglob("*.parquet")):
            raw = path.read_bytes()
            length = struct.unpack("<I", raw[-8:-4])[0]
            footer = parquet_splice.read_footer(str(path))
            encoded = bytearray()
            parquet_splice.encode_struct(encoded, footer.metadata)
            assert bytes(encoded) == raw[-8 - length:-8], path
            checked += 1
    assert checked >= 20
    with pytest.raises(parquet_splice.SpliceError, match="not a plain"):
        parquet_splice.read_footer(b"PAR1" + b"x" * 20 + b"PARE")
