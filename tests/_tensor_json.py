"""Tensors as JSON between a test and the Spark driver process it starts (tests/_cluster_job.py,
tests/_s3a_driver.py): the dtype, the shape and the values, so the test compares them exactly."""
import numpy as np


def tensor_to_json(value):
    """`{"dtype", "shape", "data"}` of an array (None stays None)."""
    if value is None:
        return None
    return {"dtype": str(value.dtype), "shape": list(value.shape), "data": np.asarray(value).ravel().tolist()}


def tensor_from_json(tensor):
    """The array `tensor_to_json` described (None stays None)."""
    return None if tensor is None else np.array(tensor["data"], dtype=tensor["dtype"]).reshape(tensor["shape"])
