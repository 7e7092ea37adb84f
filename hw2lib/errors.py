"""The project's user-facing errors: what the user must fix, said in a line or two."""
from __future__ import annotations


class UserError(Exception):
    """An input the user gave (or did not give) is wrong; the message names it and the fix."""


class MissingInput(UserError, FileNotFoundError):
    """An optional input of a report section is absent (e.g. the course's UNet.py): the
    section is skipped, and the page says what is missing and how to provide it."""
