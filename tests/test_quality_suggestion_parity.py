"""Constraint suggestions against Deequ's: the data sets of tests/data/suggestion_parity_battery.json go
through Deequ's suggestion runner (its DEFAULT rules and UniqueIfApproximatelyUnique, 2.0.7 in the
reference JVM) and through :func:`featurestore.quality.suggest.suggest`. Per column, the constraint kinds
both engines know must be suggested by both or by neither (and ``hasCompleteness`` with the same bound);
the kinds only one engine suggests are the differences on purpose listed in docs/quality.md."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from featurestore.quality.suggest import suggest

BATTERY = json.loads((Path(__file__).parent / "data" / "suggestion_parity_battery.json").read_text())
STRING_COLUMNS = {f.split()[0] for f in BATTERY["schema"].split(", ") if f.split()[1] == "string"}
# kinds only we suggest (the observed range: Deequ's default rules have none)
OURS_ONLY = {"hasMin", "hasMax"}
# kinds only Deequ suggests: a string column's inferred type, and rules on strings that hold numbers
DEEQU_ONLY = {"hasDataType"}


def _deequ_kinds(code: str) -> str:
    kind = re.match(r"\.(\w+)\(", code).group(1)
    # Deequ's fractional categorical range: isContainedIn with an assertion on the fraction
    return "isContainedIn(fraction)" if kind == "isContainedIn" and ", _ >=" in code else kind


def _compared(kind: str, column: str, numeric_text: bool) -> bool:
    """Whether a suggestion of ``kind`` on ``column`` is one both engines make by design."""
    if kind in OURS_ONLY | DEEQU_ONLY or kind == "isContainedIn(fraction)":
        return False
    if numeric_text and kind in ("isNonNegative", "isContainedIn"):
        return False  # Deequ treats text holding numbers as numbers; we keep a string a string
    # value sets: ours on strings and booleans, Deequ's on strings and integers
    return not (kind == "isContainedIn" and column not in STRING_COLUMNS)


@pytest.fixture(scope="module")
def both(reference_jvm, spark):
    out = {}
    for name, rows in BATTERY["datasets"].items():
        theirs: dict[str, dict[str, str]] = {}
        for column, code in reference_jvm.deequ_suggestions(BATTERY["schema"], rows):
            theirs.setdefault(column, {})[_deequ_kinds(code)] = code
        df = spark.createDataFrame([tuple(r) for r in rows], BATTERY["schema"])
        ours: dict[str, dict[str, dict]] = {}
        for constraint in suggest(df).checks[0].constraints:
            (kind, params), = constraint.to_data().items()
            ours.setdefault(params["column"], {})[kind] = params
        out[name] = (theirs, ours)
    return out


@pytest.mark.parametrize("dataset", list(BATTERY["datasets"]))
def test_suggested_kinds_equal_deequs(both, dataset):
    theirs, ours = both[dataset]
    differ = []
    for column in sorted(set(theirs) | set(ours)):
        t, o = theirs.get(column, {}), ours.get(column, {})
        numeric_text = "hasDataType" in t
        kinds_t = {k for k in t if _compared(k, column, numeric_text)}
        kinds_o = {k for k in o if _compared(k, column, numeric_text)}
        if kinds_t != kinds_o:
            differ.append(f"{column}: Deequ {sorted(kinds_t)}, ours {sorted(kinds_o)}")
        if "hasCompleteness" in kinds_t & kinds_o:
            bound = re.search(r"_ >= ([0-9.]+)", t["hasCompleteness"]).group(1)
            if float(bound) != float(o["hasCompleteness"]["assertion"].split()[-1]):
                differ.append(f"{column}: hasCompleteness Deequ >= {bound}, ours {o['hasCompleteness']['assertion']}")
    print(f"\n{dataset}: Deequ {theirs}\n{dataset}: ours {ours}")
    assert not differ, "\n".join(differ)
