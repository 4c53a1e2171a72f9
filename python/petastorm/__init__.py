"""Deep-learning training straight from Apache Parquet (Petastorm datasets) on the current Python stack.

The names below are loaded on first use (PEP 562), so ``import petastorm`` and ``import petastorm.codecs`` stay
cheap: the reader engine (and pyarrow.dataset, pandas) load only when a reader is made.
"""
from petastorm._lazy import lazy_module as _lazy_module

_LAZY = {"__version__": "petastorm._version", "make_reader": "petastorm.reader",
         "make_batch_reader": "petastorm.reader", "TransformSpec": "petastorm.transform",
         "NoDataAvailableError": "petastorm.errors"}

__all__ = ["__version__", "make_reader", "make_batch_reader", "TransformSpec", "NoDataAvailableError"]

__getattr__, __dir__ = _lazy_module(__name__, _LAZY)
