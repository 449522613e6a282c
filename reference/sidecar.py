"""The reference JVM: Apache Hudi's own Spark writer and reader, and Deequ, as an oracle for the tests.

Run by ``.venv-reference/bin/python reference/sidecar.py`` (pyspark 3.5.5 with the jars of
``reference/pom.xml``); the tests start it once per run (tests/reference_jvm.py) and talk to it in
JSON lines on stdin/stdout: one request ``{"op": ..., ...}`` per line, one answer per line
(``{"ok": ...}`` or ``{"error": "..."}``). It imports nothing of the feature store: what it says about
a table or a data set is Hudi's and Deequ's, not ours.

Values that JSON cannot carry exactly travel tagged: ``{"$ts": "2024-03-01T00:00:00.000001"}``
(timestamps, UTC, naive), ``{"$date": "2024-03-01"}``, ``{"$dec": "12.50"}``, ``{"$b64": "..."}``
and ``{"$float": "nan" | "inf" | "-inf"}``.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import glob
import json
import math
import os
import sys
import traceback
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))


def decode(value: Any) -> Any:
    """A tagged JSON value as Python."""
    if isinstance(value, dict) and len(value) == 1:
        (tag, text), = value.items()
        if tag == "$ts":
            return dt.datetime.fromisoformat(text)
        if tag == "$date":
            return dt.date.fromisoformat(text)
        if tag == "$dec":
            return decimal.Decimal(text)
        if tag == "$b64":
            return bytearray(base64.b64decode(text))
        if tag == "$float":
            return float(text)
    if isinstance(value, dict):
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def encode(value: Any) -> Any:
    """A Python value (from a Spark row) as tagged JSON."""
    if isinstance(value, dt.datetime):
        return {"$ts": value.replace(tzinfo=None).isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {"$dec": str(value)}
    if isinstance(value, bytes | bytearray):
        return {"$b64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": str(value)}
    if hasattr(value, "asDict"):
        return {k: encode(v) for k, v in value.asDict().items()}
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    return value


def session() -> Any:
    """One Spark 3.5 session with Apache Hudi's bundle and Deequ."""
    from pyspark.sql import SparkSession

    jars = sorted(glob.glob(os.path.join(HERE, "jars", "*.jar")))
    if not any("hudi-spark3.5-bundle" in j for j in jars):
        raise SystemExit(f"reference JVM: no Hudi bundle in {os.path.join(HERE, 'jars')}; run ./bootstrap.sh")
    builder = (SparkSession.builder.master("local[1]").appName("reference-jvm")
               .config("spark.jars", ",".join(jars))
               .config("spark.driver.memory", "1g")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "1")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
               .config("spark.serializer", "org.apache.spark.serializer.KryoSerializer")
               .config("spark.kryo.registrator", "org.apache.spark.HoodieSparkKryoRegistrar")
               .config("spark.sql.extensions", "org.apache.spark.sql.hudi.HoodieSparkSessionExtension")
               .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.hudi.catalog.HoodieCatalog"))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


class Handler:
    """The operations of the protocol."""

    def __init__(self, spark: Any) -> None:
        self.spark = spark

    def frame(self, schema: str, rows: list[list[Any]]) -> Any:
        return self.spark.createDataFrame([tuple(decode(r)) for r in rows], schema)

    def op_ping(self, _req: dict[str, Any]) -> dict[str, Any]:
        return {"spark": self.spark.version}

    def op_hudi_write(self, req: dict[str, Any]) -> dict[str, Any]:
        """One write with Apache Hudi's datasource; returns the new completed instants."""
        before = set(self._instants(req["path"]))
        options = {
            "hoodie.table.name": req.get("table_name", "reference"),
            "hoodie.datasource.write.table.type": req.get("table_type", "COPY_ON_WRITE"),
            "hoodie.datasource.write.recordkey.field": req["record_key"],
            "hoodie.datasource.write.partitionpath.field": req.get("partition_path", ""),
            "hoodie.datasource.write.operation": req.get("operation", "upsert"),
            **({"hoodie.datasource.write.precombine.field": req["precombine"]} if req.get("precombine") else {}),
            **({} if req.get("partition_path") else {
                "hoodie.datasource.write.keygenerator.class": "org.apache.hudi.keygen.NonpartitionedKeyGenerator"}),
            **{k: str(v) for k, v in (req.get("options") or {}).items()},
        }
        mode = req.get("mode") or ("overwrite" if not os.path.isdir(os.path.join(req["path"], ".hoodie"))
                                   else "append")
        (self.frame(req["schema"], req["rows"]).write.format("hudi").options(**options)
         .mode(mode).save(req["path"]))
        return {"instants": sorted(set(self._instants(req["path"])) - before)}

    def op_hudi_read(self, req: dict[str, Any]) -> dict[str, Any]:
        """Rows as Apache Hudi reads them: ``snapshot``, ``as_of`` (``instant``) or ``incremental``
        (``begin`` exclusive, ``end`` inclusive)."""
        reader = self.spark.read.format("hudi")
        kind = req.get("kind", "snapshot")
        if kind == "as_of":
            reader = reader.option("as.of.instant", req["instant"])
        elif kind == "incremental":
            reader = (reader.option("hoodie.datasource.query.type", "incremental")
                      .option("hoodie.datasource.read.begin.instanttime", req["begin"]))
            if req.get("end"):
                reader = reader.option("hoodie.datasource.read.end.instanttime", req["end"])
        df = reader.load(req["path"])
        columns = req.get("columns") or [c for c in df.columns if not c.startswith("_hoodie_")]
        return {"columns": columns, "rows": [encode(list(r)) for r in df.select(*columns).collect()]}

    def _instants(self, path: str) -> list[str]:
        """Completed instants of a table, as Hudi's own timeline lists them."""
        if not os.path.isdir(os.path.join(path, ".hoodie")):
            return []
        jvm = self.spark._jvm
        hadoop = self.spark._jsc.hadoopConfiguration()
        storage_conf = jvm.org.apache.hudi.storage.hadoop.HadoopStorageConfiguration(hadoop)
        client = (jvm.org.apache.hudi.common.table.HoodieTableMetaClient.builder()
                  .setConf(storage_conf).setBasePath(path).build())
        timeline = client.getActiveTimeline().filterCompletedInstants()
        return [i.requestedTime() for i in timeline.getInstants()]

    def op_hudi_timeline(self, req: dict[str, Any]) -> dict[str, Any]:
        """Completed instants (requested times) and the table version, as Hudi reads them."""
        jvm = self.spark._jvm
        storage_conf = jvm.org.apache.hudi.storage.hadoop.HadoopStorageConfiguration(
            self.spark._jsc.hadoopConfiguration())
        client = (jvm.org.apache.hudi.common.table.HoodieTableMetaClient.builder()
                  .setConf(storage_conf).setBasePath(req["path"]).build())
        timeline = client.getActiveTimeline().filterCompletedInstants()
        instants = [{"time": i.requestedTime(), "action": i.getAction()} for i in timeline.getInstants()]
        return {"instants": instants, "table_version": client.getTableConfig().getTableVersion().versionCode()}

    # Janino (Spark's own runtime compiler) compiles this loop once: one py4j call per key would
    # take minutes for the 100k-key filters the tests need. It only feeds Hudi's own classes.
    BLOOM_LOOPS = """
        private static String[] keys(String packed) {
            if (packed.isEmpty()) return new String[0];
            String[] parts = packed.split(",", -1);
            String[] out = new String[parts.length];
            for (int i = 0; i < parts.length; i++) {
                out[i] = new String(java.util.Base64.getDecoder().decode(parts[i]),
                                    java.nio.charset.StandardCharsets.UTF_8);
            }
            return out;
        }
        public static void add(org.apache.hudi.common.bloom.BloomFilter filter, String packed) {
            for (String key : keys(packed)) filter.add(key);
        }
        public static String probe(org.apache.hudi.common.bloom.BloomFilter filter, String packed) {
            StringBuilder answer = new StringBuilder();
            for (String key : keys(packed)) answer.append(filter.mightContain(key) ? '1' : '0');
            return answer.toString();
        }
    """

    def _bloom_loop(self, name: str, bloom: Any, keys: list[str]) -> Any:
        """Run one of BLOOM_LOOPS' static methods on a filter and keys (base64 of UTF-8, comma-joined)."""
        jvm = self.spark._jvm
        gateway = self.spark.sparkContext._gateway
        if getattr(self, "_bloom_class", None) is None:
            evaluator = jvm.org.codehaus.janino.ClassBodyEvaluator()
            evaluator.setParentClassLoader(bloom.getClass().getClassLoader())
            evaluator.cook(self.BLOOM_LOOPS)
            self._bloom_class = evaluator.getClazz()
        types = gateway.new_array(jvm.java.lang.Class, 2)
        types[0] = jvm.java.lang.Class.forName("org.apache.hudi.common.bloom.BloomFilter", True,
                                               bloom.getClass().getClassLoader())
        types[1] = jvm.java.lang.Class.forName("java.lang.String")
        args = gateway.new_array(jvm.java.lang.Object, 2)
        args[0] = bloom
        args[1] = ",".join(base64.b64encode(k.encode("utf-8")).decode() for k in keys)
        return self._bloom_class.getMethod(name, types).invoke(None, args)

    def op_hudi_bloom(self, req: dict[str, Any]) -> dict[str, Any]:
        """Apache Hudi's own bloom filter (``org.apache.hudi.common.bloom``).

        With ``keys``: a new filter from ``BloomFilterFactory.createBloomFilter(num_entries, fpp,
        max_entries, type_code)`` with the keys added in order; its ``serialized`` string. With
        ``serialized`` instead: that filter, read back by ``BloomFilterFactory.fromString``. With
        ``parquet`` (a base file's path) instead: the filter Hudi's index reads from that file's footer
        (``ParquetUtils.readBloomFilterFromMetadata``), its type code and string. ``probe``: keys to
        test; ``contains`` says, per key, what ``mightContain`` answers."""
        jvm = self.spark._jvm
        factory = jvm.org.apache.hudi.common.bloom.BloomFilterFactory
        if req.get("parquet"):
            storage = jvm.org.apache.hudi.storage.hadoop.HoodieHadoopStorage(
                req["parquet"], self.spark._jsc.hadoopConfiguration())
            bloom = jvm.org.apache.hudi.common.util.ParquetUtils().readBloomFilterFromMetadata(
                storage, jvm.org.apache.hudi.storage.StoragePath(req["parquet"]))
            if bloom is None:
                return {"type_code": None, "serialized": None, "contains": []}
        elif req.get("serialized") is not None:
            bloom = factory.fromString(req["serialized"], req.get("type_code", "DYNAMIC_V0"))
        else:
            bloom = factory.createBloomFilter(int(req["num_entries"]), float(req["fpp"]), int(req["max_entries"]),
                                              req.get("type_code", "DYNAMIC_V0"))
            self._bloom_loop("add", bloom, req.get("keys") or [])
        probe = req.get("probe") or []
        contains = [c == "1" for c in self._bloom_loop("probe", bloom, probe)] if probe else []
        return {"type_code": bloom.getBloomFilterTypeCode().name(), "serialized": bloom.serializeToString(),
                "contains": contains}

    def op_deequ_metrics(self, req: dict[str, Any]) -> dict[str, Any]:
        """Deequ's value of each analyzer ``[name, args, kwargs]`` on the rows; ``[]`` where Deequ has
        none. Analyzers run together, one Deequ pass per group of analyzers whose metrics cannot be
        told apart (same name and column, e.g. two PatternMatch on one column)."""
        os.environ.setdefault("SPARK_VERSION", "3.5")
        from pydeequ import analyzers
        from pydeequ.analyzers import AnalysisRunner, AnalyzerContext

        df = self.frame(req["schema"], req["rows"]).cache()
        specs = req["analyzers"]

        def instance(name: str, args: list[Any]) -> str:
            if name == "Size":
                return "*"
            if name == "Correlation":
                return f"{args[0]},{args[1]}"
            return ",".join(args[0]) if isinstance(args[0], list) else str(args[0])

        groups: list[list[int]] = []
        for i, (name, args, _kwargs) in enumerate(specs):
            key = (name, instance(name, args))
            for group in groups:
                if all((specs[j][0], instance(specs[j][0], specs[j][1])) != key for j in group):
                    group.append(i)
                    break
            else:
                groups.append([i])
        values: list[list[dict[str, Any]]] = [[] for _ in specs]
        for group in groups:
            runner = AnalysisRunner(self.spark).onData(df)
            for i in group:
                name, args, kwargs = specs[i]
                runner = runner.addAnalyzer(getattr(analyzers, name)(*args, **kwargs))
            # the DataFrame form: the JSON one cannot carry NaN
            found = AnalyzerContext.successMetricsAsDataFrame(self.spark, runner.run()).collect()
            metrics = [m.asDict() for m in found]
            for i in group:
                name, args = specs[i][0], specs[i][1]
                values[i] = [encode(m) for m in metrics if m["instance"] == instance(name, args)
                             and (m["name"] == name or m["name"].startswith(name + "-"))]
        df.unpersist()
        return {"values": [{"metrics": v} for v in values]}

    def op_deequ_anomalies(self, req: dict[str, Any]) -> dict[str, Any]:
        """For each ``[series, start, end]`` of ``req["cases"]``: the indices Deequ's strategy
        ``req["strategy"]`` (``{"name", "params"}``, Deequ's parameter names) flags in ``[start, end)``."""
        jvm = self.spark.sparkContext._jvm
        package = jvm.com.amazon.deequ.anomalydetection
        params = req["strategy"]["params"]

        def option(value: Any) -> Any:
            return jvm.scala.Option.apply(None if value is None else float(value))

        name = req["strategy"]["name"]
        if name == "OnlineNormal":
            strategy = package.OnlineNormalStrategy(option(params["lowerDeviationFactor"]),
                                                    option(params["upperDeviationFactor"]),
                                                    float(params["ignoreStartPercentage"]),
                                                    bool(params["ignoreAnomalies"]))
        elif name == "BatchNormal":
            strategy = package.BatchNormalStrategy(option(params["lowerDeviationFactor"]),
                                                   option(params["upperDeviationFactor"]),
                                                   bool(params["includeInterval"]))
        elif name in ("RelativeRateOfChange", "AbsoluteChange"):
            strategy = getattr(package, name + "Strategy")(option(params["maxRateDecrease"]),
                                                           option(params["maxRateIncrease"]), 1)
        elif name == "SimpleThreshold":
            strategy = package.SimpleThresholdStrategy(float(params["lowerBound"]), float(params["upperBound"]))
        else:
            raise ValueError(f"unknown strategy {name}")
        converters = jvm.scala.collection.JavaConverters
        results = []
        for series, start, end in req["cases"]:
            values = jvm.java.util.ArrayList()
            for v in series:
                values.add(float(decode(v)))
            vector = converters.asScalaBufferConverter(values).asScala().toVector()
            found = strategy.detect(vector, jvm.scala.Tuple2(int(start), int(end)))
            results.append([int(found.apply(i)._1()) for i in range(found.size())])
        return {"anomalies": results}

    def op_deequ_suggestions(self, req: dict[str, Any]) -> dict[str, Any]:
        """Deequ's constraint suggestions on the rows, with its DEFAULT rules and UniqueIfApproximatelyUnique:
        ``[column, constraint code]``. Straight through the JVM: pydeequ 1.4's rule wrappers ask for default
        arguments Deequ 2.0.7 does not have."""
        jvm = self.spark.sparkContext._jvm
        rules = jvm.com.amazon.deequ.suggestions.rules
        default_rules = getattr(getattr(jvm.com.amazon.deequ.suggestions, "Rules$"), "MODULE$").DEFAULT()
        df = self.frame(req["schema"], req["rows"])
        result = (jvm.com.amazon.deequ.suggestions.ConstraintSuggestionRunner().onData(df._jdf)
                  .addConstraintRules(default_rules).addConstraintRule(rules.UniqueIfApproximatelyUniqueRule())
                  .run())
        text = jvm.com.amazon.deequ.suggestions.ConstraintSuggestionResult.getConstraintSuggestionsAsJson(result)
        found = json.loads(text).get("constraint_suggestions", [])
        return {"suggestions": [[s["column_name"], s["code_for_constraint"]] for s in found]}

    def op_quit(self, _req: dict[str, Any]) -> dict[str, Any]:
        return {"bye": True}


def main() -> None:
    """Serve requests until ``quit`` or end of input."""
    spark = session()
    handler = Handler(spark)
    out = sys.stdout
    sys.stdout = sys.stderr  # anything else printed must not corrupt the protocol
    out.write(json.dumps({"ok": {"ready": spark.version}}) + "\n")
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            answer = {"ok": getattr(handler, "op_" + req["op"])(req)}
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller as text
            text = str(exc)
            lines = text.splitlines()
            # the Java message (its first lines: e.g. Hudi's list of conflicting table configs) and its causes
            causes = [ln.strip() for ln in lines[1:12] if not ln.lstrip().startswith("at ")]
            causes += [ln.strip() for ln in lines[12:] if ln.startswith("Caused by")]
            answer = {"error": f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"
                      + "".join(f"\n  {c}" for c in causes[:6]),
                      "trace": traceback.format_exc()[-4000:]}
        out.write(json.dumps(answer) + "\n")
        out.flush()
        if isinstance(answer.get("ok"), dict) and answer["ok"].get("bye"):
            break
    spark.stop()


if __name__ == "__main__":
    main()
