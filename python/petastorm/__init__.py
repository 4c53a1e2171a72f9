"""Deep-learning training straight from Apache Parquet (Petastorm datasets) on the current Python stack."""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("petastorm")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

from petastorm.errors import NoDataAvailableError  # noqa: E402
from petastorm.reader import make_batch_reader, make_reader  # noqa: E402
from petastorm.transform import TransformSpec  # noqa: E402

__all__ = ["__version__", "make_reader", "make_batch_reader", "TransformSpec", "NoDataAvailableError"]
