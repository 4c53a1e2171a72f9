# Two commands from a fresh clone: `make demo` and `make test`. Each sets up what is missing (virtualenv with the
# locked stack, sbt, the jar) and skips what is done. Downloads land in ~/.cache (pip, uv, coursier, sbt), so a
# new clone on the same machine installs from the cache in seconds.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.8
VERSION := $(shell cat VERSION)
JAR := python/petastorm/jars/petastorm-spark_2.13-$(VERSION).jar
DEPS_STAMP := $(VENV)/.deps-$(shell cat requirements/dev.lock pyproject.toml VERSION | cksum | cut -d' ' -f1)
SCALA_SOURCES := $(shell find scala/src/main -type f) build.sbt project/build.properties VERSION
SBT := build/sbt
PYTEST_ARGS ?=
FUZZ_SECONDS ?= 300
LEGACY_VENV := .legacy-venv
LEGACY_STAMP := $(LEGACY_VENV)/.built-$(shell cksum < scripts/legacy-venv.sh | cut -d' ' -f1)

export PYSPARK_PYTHON := $(abspath $(PY))
export PYSPARK_DRIVER_PYTHON := $(abspath $(PY))
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: demo test test-scala test-python fuzz venv legacy-venv jar publish-local wheel lock clean

demo: $(DEPS_STAMP) $(JAR)
	$(PY) examples/demo.py

test: test-scala test-python

test-scala: $(DEPS_STAMP)
	$(SBT) test < /dev/null

# The fuzzer of tests/fuzz_cases.py for FUZZ_SECONDS (make test runs it for a few seconds); prints the cases tried
# and saves every finding under tests/data/fuzz-regressions/ (replayed by make test from then on). Then the fuzz
# through Spark (decode_image, the data source's array cells and legacy schema pickles), one round of new seeds
# per minute of FUZZ_SECONDS.
fuzz: $(DEPS_STAMP) $(JAR)
	$(PY) tests/fuzz_cases.py --seconds $(FUZZ_SECONDS)
	PETASTORM_FUZZ_SPARK_ROUNDS=$$(( $(FUZZ_SECONDS) / 60 + 1 )) $(PY) -m pytest -q -s -p no:randomly \
	  tests/test_fuzz.py -k spark --timeout $$(( $(FUZZ_SECONDS) * 4 + 600 ))

# The interop test runs the original Petastorm 0.13.1 from its own virtualenv (pyarrow 14, numpy 1.26, pyspark 3.5).
# COLUMNS: wide enough that the failure summary at the end of the log keeps each error message whole.
test-python: $(DEPS_STAMP) $(JAR) $(LEGACY_STAMP)
	$(VENV)/bin/lint-imports  # the layer contracts of pyproject.toml ([tool.importlinter], docs/architecture.md)
	COLUMNS=250 PETASTORM_LEGACY_PYTHON=$(abspath $(LEGACY_VENV))/bin/python $(PY) -m pytest $(PYTEST_ARGS)

legacy-venv: $(LEGACY_STAMP)

$(LEGACY_STAMP): scripts/legacy-venv.sh
	rm -rf $(LEGACY_VENV)
	PYTHON=$(PYTHON) scripts/legacy-venv.sh $(LEGACY_VENV) >/dev/null
	touch $@

venv: $(DEPS_STAMP)

# The locked stack (pyspark, pyarrow, numpy, TF, torch, test tools) plus this package, editable.
$(DEPS_STAMP): requirements/dev.lock pyproject.toml VERSION
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	test -x $(UV) || $(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) pip install --quiet --python $(PY) -r requirements/dev.lock
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	rm -f $(VENV)/.deps-* && touch $@

jar: $(JAR)

# Compiled against the jars of the pinned pyspark; also published (jar + pom) to target/m2 for --packages tests.
$(JAR): $(DEPS_STAMP) $(SCALA_SOURCES)
	$(SBT) package publish < /dev/null
	mkdir -p $(dir $@)
	rm -f $(dir $@)petastorm-spark_*.jar
	cp target/scala-2.13/petastorm-spark_2.13-$(VERSION).jar $@

# Publishes to ~/.m2/repository, where `spark-submit --packages org.petastorm:petastorm-spark_2.13:$(VERSION)` finds it.
# Needs only a JDK, no virtualenv: without .venv, PETASTORM_SPARK_FROM=maven makes sbt fetch Spark from Maven
# Central (`provided`, at the pinned pyspark's version read from requirements/dev.lock); with .venv, its
# pyspark/jars (the same release) are used as for `make jar`.
publish-local:
	$(if $(wildcard $(PY)),,PETASTORM_SPARK_FROM=maven )$(SBT) publishM2 < /dev/null

wheel: $(DEPS_STAMP) $(JAR)
	rm -rf dist && mkdir -p dist
	tmp=$$(mktemp -d) && cp -r pyproject.toml VERSION README.md python $$tmp/ && \
	  $(PY) -m build --wheel --no-isolation --outdir dist $$tmp >/dev/null && rm -rf $$tmp
	ls dist/*.whl

lock: $(DEPS_STAMP)
	$(UV) pip compile requirements/dev.in --python-version 3.11 -o requirements/dev.lock

clean:
	rm -rf target project/target project/project dist python/petastorm/jars/*.jar $(LEGACY_VENV)

# hadoop-aws (s3a://) and the AWS SDK it needs, at the Hadoop version of the virtualenv's pyspark (its
# hadoop-client-api jar), for tests/test_s3a.py (the JVM against a local moto S3 server). Fetched once through
# Maven (~/.m2 caches it) into target/hadoop-aws/*.jar. hadoop-aws declares Hadoop itself `provided`, so nothing
# Spark already ships (hadoop-client-api/-runtime) is copied: hadoop-aws, the shaded SDK `bundle`, and two small
# runtime jars.
HADOOP_AWS_DIR := target/hadoop-aws
HADOOP_AWS_STAMP := $(HADOOP_AWS_DIR)/.fetched-$(shell cksum < requirements/dev.lock | cut -d' ' -f1)

.PHONY: hadoop-aws
hadoop-aws: $(HADOOP_AWS_STAMP)
test-python: $(HADOOP_AWS_STAMP)

$(HADOOP_AWS_STAMP): | $(DEPS_STAMP)
	rm -rf $(HADOOP_AWS_DIR) && mkdir -p $(HADOOP_AWS_DIR)
	hadoop=$$(ls "$$($(PY) -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')/jars" \
	    | sed -n 's/^hadoop-client-api-\(.*\)\.jar$$/\1/p') && test -n "$$hadoop" && \
	  printf '%s' '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>' \
	    '<groupId>local</groupId><artifactId>hadoop-aws-for-tests</artifactId><version>1</version>' \
	    '<dependencies><dependency><groupId>org.apache.hadoop</groupId><artifactId>hadoop-aws</artifactId>' \
	    "<version>$$hadoop</version></dependency></dependencies></project>" > $(HADOOP_AWS_DIR)/pom.xml
	mvn -q -B -Dstyle.color=never -f $(HADOOP_AWS_DIR)/pom.xml dependency:copy-dependencies -DincludeScope=runtime \
	  -DexcludeArtifactIds=hadoop-client-api,hadoop-client-runtime -DoutputDirectory=$(abspath $(HADOOP_AWS_DIR))
	touch $@
