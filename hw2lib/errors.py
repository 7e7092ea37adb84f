"""The project's exception types. A :class:`UserError` is a problem with what the user gave
(a missing or malformed file, a bad option): ``python -m hw2lib`` prints its message in a few
lines, without a traceback (unless ``--debug``), and exits with its ``exit_code``.

The concrete types also derive from the built-in exception a caller would expect
(``FileNotFoundError``, ``ValueError``), so ``except FileNotFoundError`` keeps working.
"""
from __future__ import annotations


class UserError(Exception):
    """A user or input error: the message names the file and what to do. Exit code 2."""
    exit_code = 2


class MissingInputError(UserError, FileNotFoundError):
    """A file or folder the command needs does not exist."""


class InputError(UserError, ValueError):
    """A file or option exists but is malformed."""


class OutputConflictError(UserError):
    """The output would overwrite an input or older results."""


class TrainingInterrupted(UserError):
    """Training stopped by SIGINT/SIGTERM: the state was saved, nothing was exported."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM


class StaleStateError(UserError, RuntimeError):
    """A training state in the output folder was written by another configuration."""


class MissingInput(MissingInputError):
    """An optional input of a report section is absent (e.g. the course's UNet.py): the
    section is skipped, not failed, and the page says what is missing and how to provide it."""
