"""Exceptions raised by fasterseg; each message names the file, key or value at fault."""


class FasterSegError(Exception):
    """Base class for every error fasterseg raises on bad input."""


class GenotypeError(FasterSegError, ValueError):
    """A genotype is malformed; the message names the offending field."""


class ModelFileError(FasterSegError, ValueError):
    """A model or checkpoint file cannot be read or does not match its description."""


class UnsafeFileError(ModelFileError):
    """A file asks to run code (an unrestricted pickle) and was refused unread."""
