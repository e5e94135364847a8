"""The errors a user can fix: each carries one line naming the file, option or folder at fault.

The command line prints that line and exits with status 2 for a :class:`UsageError` (bad input,
setting or run folder) and 1 for a :class:`TrainingError`. Nothing here imports torch.
"""

from __future__ import annotations


class UsageError(ValueError):
    """Input, settings or output folder that the user has to change (exit status 2)."""


class DataError(UsageError):
    """The input cannot be used; the message names the file and the problem."""


class ConfigError(UsageError):
    """A configuration value is out of range or unknown; the message names the field."""


class RunFolderError(UsageError):
    """The output folder cannot be used as asked (another run is there, not writable...)."""


class TrainingError(RuntimeError):
    """Training cannot go on (for example a non-finite loss)."""
