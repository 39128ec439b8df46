"""The errors deepreco raises on bad input.

Each carries a one-line message that names the file (when there is one) and the fault, so the command line
can print it as it is and exit non-zero.
"""


class DeepRecoError(Exception):
    """Base of every error deepreco raises on bad input."""


class EventError(DeepRecoError, ValueError):
    """An event's tables are inconsistent: missing column, NaN coordinate, duplicated hit_id, ..."""


class FormatError(DeepRecoError, ValueError):
    """A file cannot be read as what it claims to be (malformed, truncated, wrong columns)."""


class SubmissionError(DeepRecoError, ValueError):
    """A track submission does not fit its event (unknown hit_id, a hit in two tracks, ...)."""


class MissingFileError(DeepRecoError, FileNotFoundError):
    """A file or event that was asked for is not there."""


class UsageError(DeepRecoError, ValueError):
    """A parameter has a value the command cannot take (a --set KEY=VALUE of the wrong type, ...): exit status 2."""
