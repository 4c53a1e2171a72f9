"""The jar inside the wheel, and the jar resolved by `spark-submit --packages` from a Maven repository."""
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pyspark
import pytest
from _spark_processes import ivy_conf

import petastorm
from petastorm.spark import jar_path, session

ROOT = Path(__file__).resolve().parents[1]
# The artifact of the installed pyspark's Spark line and Scala binary.
ARTIFACT = "petastorm-spark-{1}_{2}".format(*session._pyspark_line())
COORDINATES = f"org.petastorm:{ARTIFACT}:{petastorm.__version__}"


def test_version_is_defined_once():
    assert petastorm.__version__ == (ROOT / "VERSION").read_text().strip()
    assert Path(jar_path()).name == f"{ARTIFACT}-{petastorm.__version__}.jar"


def test_jar_path_picks_the_jar_of_the_installed_pyspark_line(tmp_path, monkeypatch):
    version = petastorm.__version__
    for name in ("3.5_2.12", "3.5_2.13", "4.0_2.13"):
        (tmp_path / f"petastorm-spark-{name}-{version}.jar").touch()
    monkeypatch.setattr(session, "_JARS_DIR", tmp_path)
    monkeypatch.setattr(session, "_pyspark_line", lambda: ("3.5.5", "3.5", "2.12"))
    assert Path(jar_path()).name == f"petastorm-spark-3.5_2.12-{version}.jar"
    monkeypatch.setattr(session, "_pyspark_line", lambda: ("3.5.5", "3.5", "2.13"))
    assert Path(jar_path()).name == f"petastorm-spark-3.5_2.13-{version}.jar"
    monkeypatch.setattr(session, "_pyspark_line", lambda: ("4.1.0", "4.1", "2.13"))
    with pytest.raises(RuntimeError, match=r"pyspark 4\.1\.0 .*Spark 3\.5 \(Scala 2\.12\), 3\.5 \(Scala 2\.13\), "
                                           r"4\.0 \(Scala 2\.13\)"):
        jar_path()


def test_jar_path_refuses_a_jar_of_another_version(tmp_path, monkeypatch):
    (tmp_path / "petastorm-spark-3.5_2.12-0.13.9.jar").touch()
    (tmp_path / f"petastorm-spark-4.0_2.13-{petastorm.__version__}.jar").touch()
    monkeypatch.setattr(session, "_JARS_DIR", tmp_path)
    monkeypatch.setattr(session, "_pyspark_line", lambda: ("3.5.5", "3.5", "2.12"))
    with pytest.raises(RuntimeError, match=rf"needs petastorm-spark-3\.5_2\.12-{re.escape(petastorm.__version__)}"
                                           rf"\.jar .* has only petastorm-spark-3\.5_2\.12-0\.13\.9\.jar"):
        jar_path()


def test_the_installed_pyspark_line_and_scala_binary():
    version, line, scala = session._pyspark_line()
    assert version == pyspark.__version__ and pyspark.__version__.startswith(line + ".")
    cores = list((Path(pyspark.__file__).parent / "jars").glob("spark-core_*.jar"))
    assert [c.name for c in cores] == [f"spark-core_{scala}-{pyspark.__version__}.jar"], cores


@pytest.mark.slow
def test_spark_submit_packages_runs_a_job_that_reads_and_writes_the_format(tmp_path):
    repository = ROOT / "target" / "m2"
    pom = repository / "org/petastorm" / ARTIFACT / petastorm.__version__
    assert pom.is_dir(), f"{pom} is missing: `make jar` publishes the jar there"
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(
        """
        import sys
        import numpy as np
        from pyspark.sql import SparkSession
        spark = SparkSession.builder.getOrCreate()
        row = spark.sql("SELECT array_to_tensor(array(1, 2, 3, 4, 5, 6), array(2, 3), 'float32') AS t").first()
        assert row.t.dtype == np.float32 and row.t.shape == (2, 3), row.t
        out = spark.sql("SELECT tensor_shape(array_to_tensor(array(1L, 2L), array(2))) AS s").first().s
        print("RESULT", row.t.tolist(), out)
        (spark.range(5).selectExpr("CAST(id AS INT) AS id", "array_to_tensor(array(id, id), array(2)) AS t")
            .write.format("petastorm").save(sys.argv[1]))
        back = spark.read.format("petastorm").load(sys.argv[1]).orderBy("id").collect()
        print("DATASET", [r.t.tolist() for r in back])
        """
    ))
    spark_submit = Path(sys.executable).parent / "spark-submit"
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    proc = subprocess.run(
        [str(spark_submit), "--master", "local[1]",
         "--packages", COORDINATES, *ivy_conf(tmp_path),  # target/m2 only, an Ivy cache under tmp_path
         "--conf", "spark.sql.extensions=org.petastorm.spark.PetastormExtensions",
         "--conf", "spark.ui.enabled=false",
         str(script), str(tmp_path / "dataset")],
        capture_output=True, text=True, env=env, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "RESULT [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]] [2]" in proc.stdout
    assert "DATASET [[0, 0], [1, 1], [2, 2], [3, 3], [4, 4]]" in proc.stdout
    from petastorm import make_reader

    with make_reader(f"file://{tmp_path / 'dataset'}") as reader:
        assert sorted(int(r.id) for r in reader) == list(range(5))
    assert list((tmp_path / "ivy").rglob(f"{ARTIFACT}*.jar")), "the jar did not come through Ivy"


@pytest.mark.slow
def test_wheel_ships_the_jar_and_configure_spark_finds_it_in_a_clean_venv(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "VERSION", "README.md"):
        (source / name).write_bytes((ROOT / name).read_bytes())
    subprocess.run(["cp", "-r", str(ROOT / "python"), str(source / "python")], check=True)
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path / "dist"),
                    str(source)], check=True, capture_output=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("petastorm-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert f"petastorm/jars/{ARTIFACT}-{petastorm.__version__}.jar" in names

    venv = tmp_path / "venv"
    python = str(venv / "bin" / "python")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    uv = shutil.which("uv") or str(ROOT / ".venv" / "bin" / "uv")
    # The lock's versions as constraints, except the Spark ones: the clean venv first gets this run's pyspark
    # (3.5 in the 3.5 line's suite), which installing the wheel must leave in place. Offline: from the cache only.
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("".join(line for line in (ROOT / "requirements" / "dev.lock").read_text().splitlines(True)
                                   if not line.startswith(("pyspark==", "py4j=="))))
    install = [uv, "pip", "install", "--quiet", "--offline", "--python", python, "-c", str(constraints)]
    subprocess.run(install + [f"pyspark=={pyspark.__version__}"], check=True, timeout=300)
    subprocess.run(install + [str(wheel)], check=True, timeout=300)
    check = textwrap.dedent(
        """
        import pyspark
        from pyspark.sql import SparkSession
        import petastorm.spark as ps
        builder = ps.configure_spark(SparkSession.builder.config("spark.jars", "/x/other.jar"))
        jars = builder._options["spark.jars"].split(",")
        assert jars[0] == "/x/other.jar" and jars[1] == ps.jar_path(), jars
        assert "site-packages" in ps.jar_path(), ps.jar_path()
        spark = ps.configure_spark(SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false"))
        spark = spark.getOrCreate()
        shape = spark.sql("SELECT tensor_shape(array_to_tensor(array(1, 2, 3, 4), array(2, 2))) AS s").first().s
        spark.stop()
        print("JAR", ps.jar_path(), "PYSPARK", pyspark.__version__, "SHAPE", list(shape))
        """
    )
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", check], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    words = proc.stdout.split("JAR ", 1)[1].split()
    assert Path(words[0]).name == f"{ARTIFACT}-{petastorm.__version__}.jar" and Path(words[0]).is_file()
    assert words[1:] == ["PYSPARK", pyspark.__version__, "SHAPE", "[2,", "2]"], proc.stdout
