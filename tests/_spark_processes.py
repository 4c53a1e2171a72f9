"""Helpers for the tests that run Spark in other processes (spark-submit, a standalone cluster, a driver with
hadoop-aws): the petastorm jar's Maven coordinates, Ivy settings that resolve them from the repository `make jar`
publishes to (target/m2), the hadoop-aws jars `make hadoop-aws` fetches, and processes that run in their own process
group with their output in a log file, waited on by a line of that output and always stopped."""
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAVEN_REPOSITORY = ROOT / "target" / "m2"
HADOOP_AWS_DIR = ROOT / "target" / "hadoop-aws"


def pyspark_home():
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def petastorm_coordinates():
    """`group:artifact:version` of the petastorm jar inside the package (it follows the build's naming)."""
    from petastorm.spark.session import maven_coordinates

    return maven_coordinates()


def published_pom(coordinates):
    """The POM of `coordinates` in target/m2; fails saying how to publish it when it is missing."""
    group, artifact, version = coordinates.split(":")
    pom = MAVEN_REPOSITORY.joinpath(*group.split("."), artifact, version, f"{artifact}-{version}.pom")
    assert pom.is_file(), f"{pom} is missing: `make jar` publishes the jar there"
    return pom


def ivy_conf(workdir):
    """spark-submit arguments that resolve `--packages` from target/m2 only (~/.m2, which Ivy reads first by default,
    may hold another build), with an Ivy cache of their own under `workdir`."""
    workdir = Path(workdir)
    settings = workdir / "ivysettings.xml"
    settings.write_text(
        f'<ivysettings><settings defaultResolver="under-test"/><caches defaultCacheDir="{workdir / "ivy"}"/>'
        f'<resolvers><ibiblio name="under-test" m2compatible="true" root="{MAVEN_REPOSITORY.as_uri()}"/></resolvers>'
        "</ivysettings>")
    return ["--conf", f"spark.jars.ivySettings={settings}", "--conf", f"spark.jars.ivy={workdir / 'ivy'}"]


def hadoop_aws_jars():
    """hadoop-aws at the Hadoop version of pyspark's jars, and the AWS SDK jars beside it (`make hadoop-aws`)."""
    versions = [m.group(1) for m in map(re.compile(r"hadoop-client-api-(.+)\.jar$").match,
                                        os.listdir(pyspark_home() / "jars")) if m]
    assert len(versions) == 1, f"no single hadoop-client-api jar in pyspark's jars: {versions}"
    hadoop_aws = HADOOP_AWS_DIR / f"hadoop-aws-{versions[0]}.jar"
    assert hadoop_aws.is_file(), f"{hadoop_aws} is missing: `make hadoop-aws` fetches it (with the AWS SDK)"
    return sorted(str(p) for p in HADOOP_AWS_DIR.glob("*.jar"))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spark_env(**extra):
    """The environment for Spark's launch scripts: pyspark's SPARK_HOME, this interpreter for Python workers,
    everything bound to 127.0.0.1, no Spark Connect remote and no AWS lookups beyond localhost."""
    env = dict(os.environ, SPARK_HOME=str(pyspark_home()), PYSPARK_PYTHON=sys.executable,
               PYSPARK_DRIVER_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1", AWS_EC2_METADATA_DISABLED="true")
    env.pop("SPARK_REMOTE", None)
    env.update(extra)
    return env


def _die_with_parent():
    """In the child before exec: the kernel kills it when the test process dies, even by SIGKILL, so no server or
    worker outlives an interrupted run (PR_SET_PDEATHSIG survives exec)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


class LoggedProcess:
    """A command in its own process group, its stdout and stderr drained (so the pipe never fills) into `log_path`;
    `wait_for` waits for a line matching a regex. `stop` ends the whole group (the launcher script and its JVM)."""

    def __init__(self, command, log_path, env, stdin=subprocess.DEVNULL, cwd=None):
        self.command, self.log_path = command, Path(log_path)
        self.proc = subprocess.Popen(command, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=env, cwd=cwd, start_new_session=True,
                                     preexec_fn=_die_with_parent)
        self._lines = []
        self._changed = threading.Condition()
        self._ended = False
        self._drain = threading.Thread(target=self._read, daemon=True)
        self._drain.start()

    def _read(self):
        with open(self.log_path, "w") as log:
            for line in self.proc.stdout:
                log.write(line)
                log.flush()
                with self._changed:
                    self._lines.append(line)
                    self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def tail(self):
        with self._changed:
            return "".join(self._lines[-60:])

    def wait_for(self, pattern, timeout):
        """The first match of `pattern` in a line of output (searched from the start); raises when the output ends
        or `timeout` seconds pass without one."""
        regex, seen, end = re.compile(pattern), 0, time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self._lines[seen:]:
                    match = regex.search(line)
                    if match:
                        return match
                seen = len(self._lines)
                left = end - time.monotonic()
                if self._ended or left <= 0:
                    state = "ended" if self._ended else f"still running after {timeout} s"
                    raise AssertionError(f"{self.command[0]} {state} without printing /{pattern}/ (exit code "
                                         f"{self.proc.poll()}); the end of its log ({self.log_path}):\n"
                                         + "".join(self._lines[-60:]))
                self._changed.wait(left)

    def wait_for_exit(self, timeout):
        """Waits for the process to end; raises with the end of its log when it runs past `timeout` seconds."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.command[0]} still running after {timeout} s; the end of its log "
                                 f"({self.log_path}):\n{self.tail()}") from None
        self._drain.join(30)

    def stop(self, timeout=60):
        """SIGTERM to the process group; SIGKILL to what is left of it once the leader has ended or after `timeout`
        seconds (a worker's executors are in its group)."""
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self._drain.join(30)
