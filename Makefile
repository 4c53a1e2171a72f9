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
# One jar per Spark line, named as the artifacts are: petastorm-spark-<Spark line>_<Scala binary>-<version>.jar.
# The supported lines are the rows of project/spark-lines.txt (build.sbt reads it too), here as
# <line>_<Scala binary>:<the pyspark of its focused suite>. Rows are the lines that start with a digit (a `#`
# inside $(shell) needs GNU make 4.3); a row without its 8 columns stops make.
SPARK_LINE_ROWS := $(shell awk '{ sub(/\r$$/, "") } /^[[:space:]]*[0-9]/ { split($$2, v, "."); \
  print (NF == 8 ? $$1 "_" v[1] "." v[2] ":" $$8 : "BAD-ROW:" NR) }' project/spark-lines.txt)
ifneq ($(filter BAD-ROW:%,$(SPARK_LINE_ROWS)),)
$(error project/spark-lines.txt: expected 8 columns in row $(patsubst BAD-ROW:%,%,$(filter BAD-ROW:%,$(SPARK_LINE_ROWS))))
endif
ALL_LINES := $(foreach row,$(SPARK_LINE_ROWS),$(firstword $(subst :, ,$(row))))
# LINES: what `make jars` and `make publish-local` build.
LINES ?= $(ALL_LINES)
PYSPARK_VERSION := $(shell sed -n 's/^pyspark==\([^ ;]*\).*/\1/p' requirements/dev.lock)
# The default line is the pinned pyspark's (with the line's first Scala binary), built against that pyspark's own
# jars (`make jar`, `make test`).
DEFAULT_LINE := $(firstword $(filter $(shell echo $(PYSPARK_VERSION) | cut -d. -f1,2)_%,$(ALL_LINES)))
ifeq ($(DEFAULT_LINE),)
$(error pyspark $(PYSPARK_VERSION) of requirements/dev.lock: its Spark line is not in project/spark-lines.txt)
endif
JARS_DIR := python/petastorm/jars
JAR := $(JARS_DIR)/petastorm-spark-$(DEFAULT_LINE)-$(VERSION).jar
ALL_JARS := $(foreach line,$(LINES),$(JARS_DIR)/petastorm-spark-$(line)-$(VERSION).jar)
DEPS_STAMP := $(VENV)/.deps-$(shell cat requirements/dev.lock pyproject.toml VERSION | cksum | cut -d' ' -f1)
SCALA_SOURCES := $(shell find scala/src/main -type f) build.sbt project/spark-lines.txt project/build.properties VERSION
SBT := build/sbt
PYTEST_ARGS ?=
FUZZ_SECONDS ?= 300
LEGACY_VENV := .legacy-venv
LEGACY_STAMP := $(LEGACY_VENV)/.built-$(shell cksum < scripts/legacy-venv.sh | cut -d' ' -f1)

export PYSPARK_PYTHON := $(abspath $(PY))
export PYSPARK_DRIVER_PYTHON := $(abspath $(PY))
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: demo test test-scala test-python test-lines test-scala-lines fuzz venv legacy-venv jar jars publish-local wheel lock clean

demo: $(DEPS_STAMP) $(JAR)
	$(PY) examples/demo.py

test: test-scala test-python test-lines

# The other Spark lines, each in its own virtualenv with that line's newest pyspark (the pyspark column of
# project/spark-lines.txt; scripts/spark-line-venv.sh, rebuilt when the script or the lock changes): the focused
# suite against the line's jar (jar_path() picks it):
# the data source round trip of every codec, the SQL functions, the tensor UDT, the converter, --packages and the
# wheel. A line without a pyspark on PyPI (3.5 with Scala 2.13) runs the ScalaTest suite instead, against its
# Spark from Maven Central (and so does each line in test-scala-lines, which `make test` does not run).
MATRIX := $(filter-out %:-,$(SPARK_LINE_ROWS))
SCALATEST_LINES := $(filter-out $(DEFAULT_LINE),$(patsubst %:-,%,$(filter %:-,$(SPARK_LINE_ROWS))))
LINE_SUITE := tests/test_spark_datasource.py tests/test_spark_tensor.py tests/test_spark_image_functions.py \
  tests/test_spark_converter.py tests/test_packaging.py
LINE_VENV_KEY := $(shell cat scripts/spark-line-venv.sh requirements/dev.lock pyproject.toml | cksum | cut -d' ' -f1)

test-lines: $(DEPS_STAMP) $(ALL_JARS)
	set -e; for entry in $(MATRIX); do \
	  line=$${entry%%:*}; pyspark=$${entry##*:}; venv=.venv-spark-$${line%_*}; \
	  test -f $$venv/.built-$(LINE_VENV_KEY)-$$pyspark || { \
	    PYTHON=$(PYTHON) UV=$(UV) scripts/spark-line-venv.sh $$pyspark $$venv && touch $$venv/.built-$(LINE_VENV_KEY)-$$pyspark; }; \
	  echo "== Spark $$line: pyspark $$pyspark"; \
	  PYSPARK_PYTHON=$(CURDIR)/$$venv/bin/python PYSPARK_DRIVER_PYTHON=$(CURDIR)/$$venv/bin/python \
	    COLUMNS=250 $$venv/bin/python -m pytest -p no:cacheprovider -q $(LINE_SUITE); \
	done
	for line in $(SCALATEST_LINES); do \
	  PETASTORM_SPARK_LINE=$${line%_*} PETASTORM_SCALA=$${line#*_} $(SBT) test < /dev/null || exit 1; done

test-scala-lines:
	for line in $(LINES); do PETASTORM_SPARK_LINE=$${line%_*} PETASTORM_SCALA=$${line#*_} $(SBT) test < /dev/null || exit 1; done

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
	$(UV) pip install --quiet --python $(PY) --find-links "$$(scripts/pyspark-wheel.sh $(PYSPARK_VERSION))" \
	  -r requirements/dev.lock
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	rm -f $(VENV)/.deps-* && touch $@

# The default line's jar (what the tests and the demo use).
jar: $(JAR)

# Every line's jar: what the wheel carries (petastorm.spark.jar_path() picks the one for the installed pyspark).
jars: $(ALL_JARS)

# One line's jar, <line>_<Scala binary> taken from its name; each line builds in its own target/spark-<line>_<Scala>/,
# so switching lines recompiles nothing. The default line compiles against the pinned pyspark's jars (hence the
# virtualenv), the others against Spark from Maven Central (kept in the coursier cache). Also published (jar + pom)
# to target/m2 for the --packages tests.
$(JAR): $(DEPS_STAMP)
$(JARS_DIR)/petastorm-spark-%-$(VERSION).jar: $(SCALA_SOURCES)
	line=$*; PETASTORM_SPARK_LINE=$${line%_*} PETASTORM_SCALA=$${line#*_} $(SBT) package publish < /dev/null
	mkdir -p $(dir $@)
	rm -f $(dir $@)petastorm-spark_*.jar $(dir $@)petastorm-spark-$*-*.jar
	cp target/spark-$*/scala-$(lastword $(subst _, ,$*))/$(notdir $@) $@

# Publishes every line of LINES (e.g. `make publish-local LINES=3.5_2.12`) to ~/.m2/repository, where
# `spark-submit --packages org.petastorm:petastorm-spark-3.5_2.12:$(VERSION)` finds it. Needs only a JDK, no
# virtualenv: without .venv, PETASTORM_SPARK_FROM=maven makes sbt fetch every line's Spark from Maven Central
# (`provided`; the pinned pyspark's line at the pinned version, which must then be on Maven Central); with .venv,
# the pinned line uses its pyspark/jars (the same release) as `make jar` does.
publish-local:
	for line in $(LINES); do \
	  $(if $(wildcard $(PY)),,PETASTORM_SPARK_FROM=maven )PETASTORM_SPARK_LINE=$${line%_*} PETASTORM_SCALA=$${line#*_} \
	    $(SBT) publishM2 < /dev/null || exit 1; \
	done

wheel: $(DEPS_STAMP) $(ALL_JARS)
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
# runtime jars. Fetched again only when the pinned pyspark changes, since its jars set the Hadoop version.
HADOOP_AWS_DIR := target/hadoop-aws
HADOOP_AWS_STAMP := $(HADOOP_AWS_DIR)/.fetched-for-pyspark-$(PYSPARK_VERSION)

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
