"""The suite's own error: bad input or settings, reported as one line naming the file and the problem.

Every command catches :class:`ChronoError` (and only it) at its top, prints ``<command>: error: <message>``
on stderr and exits with :data:`USAGE_EXIT_CODE`; anything else is a bug and keeps its traceback.
Subclasses say what was wrong (checkpoint, shard, video, benchmark, settings) and stay ``ValueError``s so
that library callers can catch them the usual way.
"""

from __future__ import annotations

USAGE_EXIT_CODE = 2


class ChronoError(ValueError):
    """Input or settings the suite cannot use; the message names the file (or setting) and the problem."""


class ConfigError(ChronoError):
    """A setting outside its documented range or of the wrong type; the message names the setting."""
