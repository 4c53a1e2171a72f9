"""Entry point of the processes started by :func:`petastorm.workers_pool.exec_in_new_process.exec_in_new_process`.

Run as ``python -m petastorm.workers_pool.exec_in_new_process_entrypoint <file>``: loads ``(func, args, kwargs)``
from the file its parent wrote (and deletes it), then calls ``func(*args, **kwargs)``.
"""
from __future__ import annotations

import logging
import os
import pickle
import sys
from typing import Sequence

__all__ = ["logger", "main"]

logger = logging.getLogger(__name__)


def main(argv: Sequence[str]) -> None:
    """Runs the function stored in the file named by the only argument (written by ``exec_in_new_process``;
    it is trusted input from the parent process, loaded with pickle)."""
    if len(argv) != 1:
        raise RuntimeError("Expected a single command line argument: the file written by exec_in_new_process")
    with open(argv[0], "rb") as f:
        func, args, kwargs = pickle.load(f)
    os.remove(argv[0])
    func(*args, **kwargs)


if __name__ == "__main__":
    logging.basicConfig()
    try:
        main(sys.argv[1:])
    except Exception as e:
        logger.error("Unhandled exception in the function launched by exec_in_new_process: %s", e)
        raise
