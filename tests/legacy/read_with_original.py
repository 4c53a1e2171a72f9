"""Run under the original Petastorm 0.13.1 (see scripts/legacy-venv.sh): reads a dataset with its make_reader and
writes to OUT_JSON the schema it loaded, every row (in the form of ``as_json``) and the ids selected through a
row-group index. Also imported by the interop test for ``as_json``, so it must run on both stacks.

    python read_with_original.py DATASET_URL OUT_JSON [INDEX_NAME VALUE]
"""
import decimal
import hashlib
import json
import sys

import numpy as np


def as_json(value):
    """A decoded value in a JSON form comparable across numpy versions (arrays by sha256 of their bytes)."""
    if value is None:
        return None
    if isinstance(value, decimal.Decimal):
        return {"decimal": str(value)}
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "SU":
            return {"dtype": value.dtype.kind, "shape": list(value.shape),
                    "values": [repr(v) if value.dtype.kind == "S" else str(v) for v in value.ravel().tolist()]}
        return {"dtype": value.dtype.str, "shape": list(value.shape),
                "sha256": hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()}
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, (str, np.str_)):
        return str(value)
    raise TypeError("unexpected decoded type %r" % type(value))


def main(argv):
    from petastorm import make_reader
    from petastorm.etl.dataset_metadata import get_schema_from_dataset_url
    from petastorm.selectors import SingleIndexSelector

    url = argv[0]
    schema = get_schema_from_dataset_url(url)
    result = {"schema": [[f.name, f.numpy_dtype.__name__, list(f.shape), type(f.codec).__name__ if f.codec else None,
                          f.nullable] for f in schema.fields.values()],
              "rows": [], "jpeg_pixels": {}}
    with make_reader(url, reader_pool_type="dummy", shuffle_row_groups=False) as reader:
        for row in reader:
            values = row._asdict()
            result["rows"].append({name: as_json(value) for name, value in values.items()})
            if values.get("jpeg") is not None:
                result["jpeg_pixels"][str(values["id"])] = values["jpeg"].tolist()
    if len(argv) == 4:
        selector = SingleIndexSelector(argv[2], [int(argv[3])])
        with make_reader(url, reader_pool_type="dummy", rowgroup_selector=selector, schema_fields=["id"]) as reader:
            result["selected_ids"] = sorted(int(row.id) for row in reader)
    with open(argv[1], "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main(sys.argv[1:])
