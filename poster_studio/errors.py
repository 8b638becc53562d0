"""Typed exceptions with texts meant for users: the app shows `str(exc)` as a one-line message."""


class PosterStudioError(Exception):
    """Base class: anything a user can cause or fix."""


class InvalidImageError(PosterStudioError, ValueError):
    """The input is not a usable image (not an image, corrupt, too large, too small ...)."""


class InvalidArgumentError(PosterStudioError, ValueError):
    """An argument is out of range or unknown (genre names, counts, sizes, strengths ...)."""


class CheckpointError(PosterStudioError, RuntimeError):
    """A model checkpoint is missing, truncated or does not match its config."""


class BusyError(PosterStudioError, RuntimeError):
    """The server is doing as much of this as it can at once; the message says when or what else to try."""
