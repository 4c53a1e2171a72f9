"""Finding the petastorm jar and adding it (with the SQL extension) to a SparkSession builder; telling a Spark Connect
session from a classic one, and the error condition of a Spark exception from either."""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any, Iterator

from pyspark.sql import SparkSession

import petastorm

EXTENSIONS_CLASS = "org.petastorm.spark.PetastormExtensions"
COMMIT_PROTOCOL_CLASS = "org.petastorm.spark.datasource.PetastormCommitProtocol"
_COMMIT_PROTOCOL_KEY = "spark.sql.sources.commitProtocolClass"
_JARS_DIR = Path(__file__).resolve().parent.parent / "jars"


def _pyspark_line() -> tuple[str, str, str]:
    """(version, Spark line `major.minor`, Scala binary) of the installed pyspark. The Scala binary is read from the
    `spark-core_2.1x-*.jar` that pyspark (or $SPARK_HOME) ships; without one, Spark's default for the line."""
    import pyspark

    version = pyspark.__version__
    line = ".".join(version.split(".")[:2])
    folders = [Path(pyspark.__file__).resolve().parent / "jars"]
    if os.environ.get("SPARK_HOME"):
        folders.append(Path(os.environ["SPARK_HOME"]) / "jars")
    for folder in folders:
        for core in sorted(folder.glob("spark-core_2.1*-*.jar")):
            return version, line, core.name[len("spark-core_"):].split("-", 1)[0]
    return version, line, "2.12" if line.startswith("3.") else "2.13"


def jar_path() -> str:
    """Path of the petastorm Spark jar, shipped inside this package (`petastorm/jars/`), built for the installed
    pyspark's line: `petastorm-spark-<Spark major.minor>_<Scala binary>-<version>.jar`."""
    jars = sorted(_JARS_DIR.glob("petastorm-spark-*_2.1*-*.jar"))
    if not jars:
        raise FileNotFoundError(
            f"The petastorm Spark jar is missing from {_JARS_DIR}: in a source checkout run `make jar` (or `make jars`); "
            "otherwise reinstall the petastorm wheel, which ships it"
        )
    version, line, scala = _pyspark_line()
    prefix = f"petastorm-spark-{line}_{scala}-"
    wanted = f"{prefix}{petastorm.__version__}.jar"
    if any(j.name == wanted for j in jars):
        return str(_JARS_DIR / wanted)
    others = [j.name for j in jars if j.name.startswith(prefix)]
    if others:  # a jar left by a build of another version: its classes need not match this package's Python side
        raise RuntimeError(
            f"petastorm {petastorm.__version__} needs {wanted} in {_JARS_DIR}, which has only {', '.join(others)} for "
            f"that Spark line (a build of another version): in a source checkout run `make jar`; otherwise "
            f"reinstall the petastorm wheel")
    built = sorted({j.name[len("petastorm-spark-"):].rsplit("-", 1)[0].replace("_", " (Scala ") + ")" for j in jars})
    raise RuntimeError(
        f"petastorm has no Spark jar for pyspark {version} (Spark {line}, Scala {scala}) in {_JARS_DIR}; it has jars "
        f"for Spark {', '.join(built)}. Install a pyspark of one of those lines (in a source checkout, "
        f"`make jars` builds every supported line)"
    )


def maven_coordinates() -> str:
    """`org.petastorm:<artifact>:<version>` of the jar `jar_path()` picks, for `--packages` (e.g.
    `org.petastorm:petastorm-spark-3.5_2.12:0.14.0`)."""
    name = Path(jar_path()).name
    artifact, version = name[:-len(".jar")].rsplit("-", 1)
    return f"org.petastorm:{artifact}:{version}"


class SparkConnectUnsupportedError(RuntimeError):
    """The API needs a classic SparkSession (an RDD, the SparkContext or the JVM through py4j), which a Spark Connect
    session does not have."""


def is_connect(spark_object: Any) -> bool:
    """True for a Spark Connect session (or a DataFrame or Column of one); False for a classic one."""
    return type(spark_object).__module__.startswith("pyspark.sql.connect")


def require_classic(spark: Any, api: str, instead: str) -> None:
    """Raises `SparkConnectUnsupportedError` naming `api` and what to use `instead` when `spark` is Spark Connect."""
    if is_connect(spark):
        raise SparkConnectUnsupportedError(
            f"{api} needs a classic SparkSession: Spark Connect has no SparkContext, RDDs or py4j access to the "
            f"JVM. Instead: {instead}")


def error_condition(error: BaseException) -> str | None:
    """Spark's error condition (e.g. 'PATH_ALREADY_EXISTS') of an exception from a classic session (also a py4j error
    wrapping a JVM exception) or from Spark Connect; None when it has none."""
    java = getattr(error, "java_exception", None)
    get = (getattr(error, "getCondition", None) or getattr(error, "getErrorClass", None)  # pyspark 3.5: ErrorClass
           or getattr(java, "getCondition", None) or getattr(java, "getErrorClass", None))
    try:
        return get() if get is not None else None
    except Exception:  # noqa: BLE001 - a JVM exception that is not a SparkThrowable
        return None


def connect_server_setup() -> str:
    """How to give a Spark Connect server the petastorm jar and SQL extension (they are fixed when it starts)."""
    return (f"start the Spark Connect server with `--jars {jar_path()}` (or `--packages {maven_coordinates()}`, "
            f"or the spark.jars conf) and "
            f"`--conf spark.sql.extensions={EXTENSIONS_CLASS}`")


def _append(options: dict, key: str, value: str) -> str:
    present = [v for v in str(options.get(key, "")).split(",") if v]
    return ",".join(present + ([value] if value not in present else []))


def configure_spark(builder: SparkSession.Builder, extensions: bool = True) -> SparkSession.Builder:
    """Adds the petastorm jar (and, unless `extensions=False`, its SQL extension) to `builder`.

    Values already set for `spark.jars` and `spark.sql.extensions` are kept. Unless another commit protocol is
    configured, it also sets `spark.sql.sources.commitProtocolClass` to petastorm's, which defers the deletions
    of an overwrite until the job commits (a failed overwrite leaves the old data). Jars reach the JVM only when
    it starts, so call this before the process's first `getOrCreate()`. A Spark Connect builder (`.remote(...)`)
    raises `SparkConnectUnsupportedError`: the jar and the extension belong to the server.
    """
    from pyspark import SparkContext

    options = getattr(builder, "_options", {})
    if "spark.remote" in options or os.environ.get("SPARK_REMOTE"):
        raise SparkConnectUnsupportedError(
            "configure_spark: a Spark Connect client cannot add jars to the server; " + connect_server_setup())
    jar = jar_path()
    active = SparkContext._active_spark_context
    if active is not None and jar not in active.getConf().get("spark.jars", ""):
        raise RuntimeError(
            "A SparkContext without the petastorm jar is already running in this process. Jars reach the JVM only "
            "when it starts, and the JVM outlives SparkSession.stop(), so stopping the session does not help. "
            "Start a new Python process (in a notebook: restart the kernel) and call configure_spark(builder) "
            "before the first getOrCreate(); or launch with `--jars " + jar + " --conf spark.sql.extensions="
            + EXTENSIONS_CLASS + "` (pyspark, spark-submit or PYSPARK_SUBMIT_ARGS)"
        )
    builder = builder.config("spark.jars", _append(options, "spark.jars", jar))
    if extensions:
        builder = builder.config("spark.sql.extensions", _append(options, "spark.sql.extensions", EXTENSIONS_CLASS))
    if _COMMIT_PROTOCOL_KEY not in options:
        builder = builder.config(_COMMIT_PROTOCOL_KEY, COMMIT_PROTOCOL_CLASS)
    return builder


@contextlib.contextmanager
def cli_session(app_name: str, master: str | None = None, conf: dict | None = None,
                with_petastorm: bool = False) -> Iterator[SparkSession]:
    """The SparkSession a command-line tool runs on: the active one if there is one (left running), else a new one
    (local unless `master` names another; `conf` and, with `with_petastorm`, `configure_spark` applied), stopped
    when the block ends."""
    active = SparkSession.getActiveSession()
    if active is not None:
        yield active
        return
    builder = SparkSession.builder.appName(app_name)
    if sys.stderr.isatty() and "spark.ui.showConsoleProgress" not in (conf or {}):
        builder = builder.config("spark.ui.showConsoleProgress", "true")  # long jobs show Spark's progress bar
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    if master:
        builder = builder.master(master)
    spark = (configure_spark(builder) if with_petastorm else builder).getOrCreate()
    try:
        yield spark
    finally:
        spark.stop()
