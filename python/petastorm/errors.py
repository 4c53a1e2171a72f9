"""Exceptions raised by petastorm."""


class PetastormMetadataError(Exception):
    """The dataset's Petastorm metadata is missing, malformed or refused (e.g. an unsafe pickle)."""


class NoDataAvailableError(Exception):
    """No row groups are left to read (e.g. after filtering or sharding)."""


class DecodeFieldError(ValueError, RuntimeError):
    """A stored cell could not be decoded by its field's codec (a ``RuntimeError`` as in the original, and a
    ``ValueError``)."""


class FieldValueError(TypeError, ValueError):
    """A value does not fit its UnischemaField (type, dtype or shape). Both a ``TypeError`` (what the original
    raised for a non-scalar given to ``ScalarCodec``) and a ``ValueError`` (what it raised for a wrong dtype or
    shape), so code written against either keeps working."""
