"""The original Petastorm's ``petastorm.etl.legacy`` names, on top of our allow-list unpickler.

``restricted_loads`` and ``depickle_legacy_package_name_compatible`` load pickled Petastorm metadata with the
same allow-list as :func:`petastorm.etl.legacy_pickle.safe_loads`: only the exact classes that Petastorm
metadata contains are resolved, so a crafted pickle cannot import or call anything else. As in the original,
a refused pickle raises :class:`pickle.UnpicklingError`.

Metadata written before the package was renamed (module prefixes ``av.experimental.deepdrive.dataset_toolkit``
and ``av.ml.dataset_toolkit``) is read too: the allow-list maps those names to ``petastorm``.
"""
from __future__ import annotations

import io
import logging
import pickle
from typing import Any

from petastorm.errors import PetastormMetadataError
from petastorm.etl.legacy_pickle import _SafeUnpickler

__all__ = ["RestrictedUnpickler", "depickle_legacy_package_name_compatible", "restricted_loads", "safe_modules"]

logger = logging.getLogger(__name__)

#: Top-level packages some of whose classes may appear in Petastorm metadata. Informational only: what is loaded
#: is decided by the exact (module, name) allow-list of :mod:`petastorm.etl.legacy_pickle`, so this set is frozen
#: (adding a package to it could not allow anything).
safe_modules = frozenset({
    "petastorm", "collections", "numpy", "pyspark", "decimal", "builtins", "copy_reg", "__builtin__",
})

_LEGACY_PACKAGE_NAMES = (b"av.experimental.deepdrive.dataset_toolkit", b"av.ml.dataset_toolkit")


class RestrictedUnpickler(_SafeUnpickler):
    """An unpickler that resolves only the classes Petastorm metadata may contain.

    Anything else (``os.system``, ``subprocess.Popen``, ``builtins.eval``...) raises
    :class:`pickle.UnpicklingError` before it is imported or called. Python 2 pickles are read with the
    ``latin1`` encoding unless another one is given.
    """

    def __init__(self, file: Any, *, fix_imports: bool = True, encoding: str = "latin1", errors: str = "strict",
                 buffers: Any = None) -> None:
        super().__init__(file, fix_imports=fix_imports, encoding=encoding, errors=errors, buffers=buffers)

    def find_class(self, module: str, name: str) -> Any:
        """The allow-listed object for ``module.name``; :class:`pickle.UnpicklingError` for any other global."""
        try:
            return super().find_class(module, name)
        except PetastormMetadataError as e:
            raise pickle.UnpicklingError(f"global '{module}.{name}' is forbidden ({e})") from None

    def load(self) -> Any:
        """Reads one pickled object; a refusal of the allow-list is raised as :class:`pickle.UnpicklingError`."""
        try:
            return super().load()
        except PetastormMetadataError as e:
            raise pickle.UnpicklingError(str(e)) from None


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
