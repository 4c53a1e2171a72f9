"""``ArrowTableSerializer``: serializes a ``pyarrow.Table`` as an Arrow IPC stream (the original's serializer for
process-pool workers that publish Arrow tables)."""
from __future__ import annotations

from typing import Any

import pyarrow as pa

__all__ = ["ArrowTableSerializer"]


class ArrowTableSerializer:
    """``serialize(table) -> pyarrow.Buffer`` holding an Arrow IPC stream; ``deserialize`` reads it back into a
    ``pyarrow.Table`` (any buffer-like object: ``pyarrow.Buffer``, ``bytes``, ``memoryview``)."""

    def serialize(self, rows: pa.Table) -> pa.Buffer:
        """``rows`` (a ``pyarrow.Table``) as one IPC stream."""
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, rows.schema) as writer:
            writer.write_table(rows)
        return sink.getvalue()

    def deserialize(self, serialized_rows: Any) -> pa.Table:
        """The table written by :meth:`serialize`."""
        return pa.ipc.open_stream(serialized_rows).read_all()
