"""The installed package's version (``importlib.metadata`` costs tens of milliseconds: loaded on first use)."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("petastorm")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"
