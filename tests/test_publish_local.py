"""`make publish-local` on a machine without the Python stack (issue #15).

The run happens in a copy of the build's files without `.venv` and without the virtualenv on PATH, so sbt cannot
find pyspark: Spark has to come from Maven Central (`provided`, at the version pinned in requirements/dev.lock).
The Maven repository it publishes to is a temporary folder (`-Dmaven.repo.local`, which sbt's publishM2 honours),
never the real ~/.m2; the coursier cache stays where it is, so Spark's jars are downloaded once and reused.

PETASTORM_PUBLISH_LOCAL_SPARK=<version> pins another Spark release in the copy's lock file: a way to exercise the
mechanism where the pinned release is not (yet) on Maven Central, in which case the test is skipped otherwise.
"""
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VERSION = (ROOT / "VERSION").read_text().strip()
CENTRAL = "https://repo1.maven.org/maven2"
COURSIER_CACHE = Path(os.environ.get("COURSIER_CACHE", Path.home() / ".cache" / "coursier" / "v1"))
POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}

# What a Scala-only clone needs for `make publish-local` (plus the files the Makefile reads when it is parsed).
BUILD_FILES = ["build.sbt", "project/spark-lines.txt", "project/build.properties", "build", "scala", "VERSION",
               "requirements/dev.lock", "Makefile", "pyproject.toml", "scripts/legacy-venv.sh"]


def pinned_spark_version(lock_text):
    match = re.search(r"(?m)^pyspark==([^\s;#]+)", lock_text)
    assert match, "no pyspark pin in requirements/dev.lock"
    return re.sub(r"\.dev(\d+)$", r"-preview\1", match.group(1))


def on_maven_central(spark_version):
    """False only when Maven Central answers that spark-sql at this version does not exist."""
    path = f"org/apache/spark/spark-sql_2.13/{spark_version}/spark-sql_2.13-{spark_version}.pom"
    if (COURSIER_CACHE / "https" / "repo1.maven.org" / "maven2" / path).is_file():
        return True
    try:
        urllib.request.urlopen(urllib.request.Request(f"{CENTRAL}/{path}", method="HEAD"), timeout=30).close()
    except urllib.error.HTTPError as e:
        return e.code != 404
    except OSError:
        pass  # offline: let the build say what it can and cannot resolve
    return True


def copy_build(destination):
    for name in BUILD_FILES:
        source = ROOT / name
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.part", "target"))
        else:
            shutil.copy2(source, target)


def environment_without_python_stack(maven_repository):
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "SPARK_JARS_DIR", "PETASTORM_SPARK_FROM", "PYSPARK_PYTHON",
                        "PYSPARK_DRIVER_PYTHON", "PYTHONPATH", "SPARK_HOME")}
    venv_bins = {str(Path(sys.executable).parent), str(Path(sys.prefix) / "bin")}
    if os.environ.get("VIRTUAL_ENV"):
        venv_bins.add(str(Path(os.environ["VIRTUAL_ENV"]) / "bin"))
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p and p not in venv_bins)
    env["COURSIER_CACHE"] = str(COURSIER_CACHE)
    env["JAVA_TOOL_OPTIONS"] = f"{env.get('JAVA_TOOL_OPTIONS', '')} -Dmaven.repo.local={maven_repository}".strip()
    return env


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_publish_local_needs_no_python_environment(tmp_path):
    if shutil.which("make") is None or shutil.which("java") is None:
        pytest.skip("needs make and a JDK")
    project = tmp_path / "clone"
    copy_build(project)
    lock = project / "requirements" / "dev.lock"
    override = os.environ.get("PETASTORM_PUBLISH_LOCAL_SPARK")
    if override:
        lock.write_text(re.sub(r"(?m)^pyspark==\S+", f"pyspark=={override}", lock.read_text()))
    spark_version = pinned_spark_version(lock.read_text())
    line = ".".join(spark_version.split(".")[:2])
    artifact = f"petastorm-spark-{line}_2.13"  # the pinned pyspark's line; Spark 4 is built for Scala 2.13 only
    if not on_maven_central(spark_version):
        pytest.skip(f"Spark {spark_version} (the pinned pyspark) is not on Maven Central: `make publish-local` "
                    "cannot fetch it; PETASTORM_PUBLISH_LOCAL_SPARK=<a published release> runs this test on that one")
    assert not (project / ".venv").exists()

    repository = tmp_path / "m2"
    proc = subprocess.run(["make", "publish-local", f"LINES={line}_2.13"], cwd=project, env=environment_without_python_stack(repository),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=1100)
    log = proc.stdout + proc.stderr
    print(log)  # shown when the test fails
    assert proc.returncode == 0, f"make publish-local failed with {proc.returncode}"
    assert "PETASTORM_SPARK_FROM=maven" in proc.stdout  # the recipe that ran

    published = repository / "org" / "petastorm" / artifact / VERSION
    jar = published / f"{artifact}-{VERSION}.jar"
    pom = published / f"{artifact}-{VERSION}.pom"
    assert jar.is_file() and pom.is_file(), sorted(p.name for p in repository.rglob("*"))
    assert f"published {artifact} to file:{repository}/" in log, log[-3000:]  # not into ~/.m2

    names = zipfile.ZipFile(jar).namelist()
    assert "org/petastorm/spark/datasource/PetastormDataSource.class" in names
    assert "META-INF/services/org.apache.spark.sql.sources.DataSourceRegister" in names
    assert not [n for n in names if n.startswith("org/apache/spark/")], "Spark must not be packaged"

    assert ET.parse(pom).getroot().findtext("m:artifactId", namespaces=POM_NS) == artifact
    dependencies = {}
    for dep in ET.parse(pom).getroot().iterfind("m:dependencies/m:dependency", POM_NS):
        coordinate = f"{dep.findtext('m:groupId', namespaces=POM_NS)}:{dep.findtext('m:artifactId', namespaces=POM_NS)}"
        dependencies[coordinate] = (dep.findtext("m:version", namespaces=POM_NS),
                                    dep.findtext("m:scope", default="compile", namespaces=POM_NS))
    spark = {c: v for c, v in dependencies.items() if c.startswith("org.apache.spark:")}
    assert spark.get("org.apache.spark:spark-sql_2.13") == (spark_version, "provided"), dependencies
    assert all(scope == "provided" for _, scope in spark.values()), spark
    assert all(version == spark_version for version, _ in spark.values()), spark
    compile_scope = [c for c, (_, scope) in dependencies.items() if scope in ("compile", "runtime")]
    assert compile_scope == [], f"`--packages` would pull these in: {compile_scope}"
    assert dependencies["org.scala-lang:scala-library"][1] == "provided"
