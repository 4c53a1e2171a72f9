"""``exec_in_new_process``: run a function in a freshly started Python interpreter (not a fork of this one)."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from tempfile import mkstemp
from typing import Any, Callable

__all__ = ["exec_in_new_process", "logger"]

logger = logging.getLogger(__name__)

_ENTRYPOINT_MODULE = "petastorm.workers_pool.exec_in_new_process_entrypoint"


def exec_in_new_process(func: Callable[..., Any], *args: Any, **kargs: Any) -> subprocess.Popen:
    """Starts ``python -m petastorm.workers_pool.exec_in_new_process_entrypoint`` which calls ``func(*args,
    **kargs)``; returns its :class:`subprocess.Popen` handle (``wait()`` / ``poll()`` it).

    ``func`` and its arguments travel through a private temporary file, pickled with cloudpickle (functions
    defined in ``__main__`` or locally travel by value); the new process deletes the file when it has read it.
    """
    from petastorm.reader_impl.process_pool import cloudpickle

    payload = cloudpickle.dumps((func, args, kargs))
    handle, path = mkstemp(suffix="runnable")
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(payload)
        return subprocess.Popen([sys.executable, "-m", _ENTRYPOINT_MODULE, path], executable=sys.executable)
    except BaseException:
        os.remove(path)
        raise
