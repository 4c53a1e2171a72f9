"""The original's benchmark command-line module; it delegates to :mod:`petastorm.benchmark.throughput`, which
holds the one implementation (also installed as the ``petastorm-throughput`` command)::

    python -m petastorm.benchmark.cli file:///tmp/ds --field-regex 'image.*' -w 4 -p thread -m 200 -n 1000
"""
from __future__ import division, print_function

import logging
import sys
from typing import Any, Sequence

from petastorm.benchmark import throughput
from petastorm.benchmark.throughput import ReadMethod, WorkerPoolType, reader_throughput

__all__ = ["main", "reader_throughput", "ReadMethod", "WorkerPoolType", "logger"]

logger = logging.getLogger(__name__)


def _parse_args(args: Sequence[str]) -> Any:
    """The parsed command line (the options of ``petastorm-throughput``)."""
    return throughput._parse_args(list(args))


def _main(args: Sequence[str]) -> Any:
    """Runs the benchmark for a command line and prints the result; returns the ``BenchmarkResult``."""
    return throughput._main(list(args))


def main() -> None:
    """Entry point: measures the throughput of a reader on the dataset named on the command line."""
    _main(sys.argv[1:])


if __name__ == "__main__":
    main()
