"""The original Petastorm's ``petastorm.etl.legacy`` names, on top of our pickle-as-data loader.

``restricted_loads``, ``depickle_legacy_package_name_compatible`` and ``RestrictedUnpickler`` load pickled Petastorm
metadata as :func:`petastorm.etl.legacy_pickle.safe_loads` does: the pickle is read as data, only the exact classes
that Petastorm metadata contains may be named, and each object is built by our own code from checked values, so a
crafted pickle cannot import, call or crash anything. As in the original, a refused pickle raises
:class:`pickle.UnpicklingError`.

Metadata written before the package was renamed (module prefixes ``av.experimental.deepdrive.dataset_toolkit``
and ``av.ml.dataset_toolkit``) is read too: the allow-list maps those names to ``petastorm``.
"""
from __future__ import annotations

import io
import logging
import pickle
from typing import Any

from petastorm.errors import PetastormMetadataError
from petastorm.etl.legacy_pickle import load_prefix, resolve_global, resolve_object
from petastorm.etl.pickle_data import Global

__all__ = ["RestrictedUnpickler", "depickle_legacy_package_name_compatible", "restricted_loads", "safe_modules"]

logger = logging.getLogger(__name__)

#: Top-level packages some of whose classes may appear in Petastorm metadata. Informational only: what is loaded
#: is decided by the exact (module, name) allow-list of :mod:`petastorm.etl.legacy_pickle`, so this set is frozen
#: (adding a package to it could not allow anything).
safe_modules = frozenset({
    "petastorm", "collections", "numpy", "pyspark", "decimal", "builtins", "copy_reg", "__builtin__",
})

_LEGACY_PACKAGE_NAMES = (b"av.experimental.deepdrive.dataset_toolkit", b"av.ml.dataset_toolkit")


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that loads only what Petastorm metadata may contain, reading the pickle as data.

    Anything else (``os.system``, ``subprocess.Popen``, ``builtins.eval``...) raises
    :class:`pickle.UnpicklingError` before it is imported or called. Python 2 strings are read as latin-1 text.
    """

    def __init__(self, file: Any, *, fix_imports: bool = True, encoding: str = "latin1", errors: str = "strict",
                 buffers: Any = None) -> None:
        super().__init__(file, fix_imports=fix_imports, encoding=encoding, errors=errors, buffers=buffers)
        self._source = file

    def find_class(self, module: str, name: str) -> Any:
        """The allow-listed object for ``module.name``; :class:`pickle.UnpicklingError` for any other global."""
        try:
            return resolve_object(module, name)
        except PetastormMetadataError as e:
            raise pickle.UnpicklingError(f"global '{module}.{name}' is forbidden ({e})") from None

    def load(self) -> Any:
        """Reads one pickled object from the file (left just after it when it can seek); a refusal is raised as
        :class:`pickle.UnpicklingError`."""
        start = self._source.tell() if self._source.seekable() else 0
        try:
            value, end = load_prefix(self._source.read(), resolve=_resolve)
        except PetastormMetadataError as e:
            raise pickle.UnpicklingError(str(e)) from None
        if self._source.seekable():
            self._source.seek(start + end)
        return value


def _resolve(module: str, name: str) -> Global:
    try:
        return resolve_global(module, name)
    except PetastormMetadataError as e:
        raise PetastormMetadataError(f"global '{module}.{name}' is forbidden ({e})") from None


def restricted_loads(s: bytes) -> Any:
    """Like :func:`pickle.loads`, but through :class:`RestrictedUnpickler`.

    :raises pickle.UnpicklingError: the pickle refers to something outside the allow-list.
    """
    return RestrictedUnpickler(io.BytesIO(s)).load()


def depickle_legacy_package_name_compatible(pickled_string: bytes) -> Any:
    """Loads pickled Petastorm metadata, including pickles that name the package's pre-rename modules.

    :param pickled_string: the pickle bytes (e.g. the value of ``dataset-toolkit.unischema.v1``).
    :return: the unpickled object (a ``Unischema``, a dict of row-group indexers...).
    :raises pickle.UnpicklingError: the pickle refers to something outside the allow-list.
    """
    for legacy_name in _LEGACY_PACKAGE_NAMES:
        if legacy_name in pickled_string:
            logger.warning('Depickling modules of "%s", which have moved to "petastorm". Regenerate the metadata.',
                           legacy_name.decode("ascii"))
    return restricted_loads(pickled_string)
