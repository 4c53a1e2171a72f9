"""``PickleSerializer``: the original's default serializer of a process pool's results (plain pickle)."""
from __future__ import annotations

import pickle
from typing import Any

__all__ = ["PickleSerializer"]


class PickleSerializer:
    """Serializes any picklable value with the highest pickle protocol.

    ``deserialize`` is ``pickle.loads``, which can run arbitrary code: use it only on bytes that your own process
    (or its worker processes) produced, never on data from elsewhere.
    """

    def serialize(self, rows: Any) -> bytes:
        """``rows`` as pickle bytes."""
        return pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL)

    def deserialize(self, serialized_rows: Any) -> Any:
        """The value ``serialize`` was given (trusted input only, see the class docstring)."""
        return pickle.loads(serialized_rows)
