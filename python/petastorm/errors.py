"""Exceptions raised by petastorm."""


class PetastormMetadataError(Exception):
    """The dataset's Petastorm metadata is missing, malformed or refused (e.g. an unsafe pickle)."""


class NoDataAvailableError(Exception):
    """No row groups are left to read (e.g. after filtering or sharding)."""


class DecodeFieldError(ValueError):
    """A stored cell could not be decoded by its field's codec."""
