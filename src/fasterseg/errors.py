"""Exceptions raised by fasterseg; each message names the file, key or value at fault."""


class FasterSegError(Exception):
    """Base class for every error fasterseg raises on bad input."""


class GenotypeError(FasterSegError, ValueError):
    """A genotype is malformed; the message names the offending field."""


class ModelFileError(FasterSegError, ValueError):
    """A model or checkpoint file cannot be read or does not match its description."""


class UnsafeFileError(ModelFileError):
    """A file asks to run code (an unrestricted pickle) and was refused unread."""


class EvaluationError(FasterSegError, ValueError):
    """Predictions or ground truth that cannot be scored; the message names the file."""


class ConfigError(FasterSegError, ValueError):
    """A configuration file or override is invalid; the message names the key."""


class HistoryError(FasterSegError, ValueError):
    """The run has no history of the asked epoch or architecture."""


class DemoError(FasterSegError, RuntimeError):
    """A demo stage failed; the message names the stage and its command."""


class InitError(FasterSegError, ValueError):
    """The model file cannot initialise this network."""


class TrainingError(FasterSegError, RuntimeError):
    """Training cannot go on (e.g. the loss became non-finite); the last good checkpoint is kept."""


class DatasetError(FasterSegError, ValueError):
    """A dataset is missing, empty or malformed; the message names the file."""


class ExportError(FasterSegError, RuntimeError):
    """Export failed or the exported graph disagrees with PyTorch."""


class InputError(FasterSegError, ValueError):
    """One input cannot be read; the message names it."""


class RunInUseError(FasterSegError, RuntimeError):
    """Another live process holds the run folder."""


class LatencyTableError(FasterSegError, ValueError):
    """A latency table is malformed, mismatched, or lacks entries a prediction needs."""


class BackendUnavailable(FasterSegError, RuntimeError):
    """The requested backend, device or precision cannot run here; the message says why."""


class CalibrationError(FasterSegError, ValueError):
    """Calibration data for int8 quantisation does not fit the model (class count, image size)."""
