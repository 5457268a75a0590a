"""The project's exception hierarchy.

Every error a user can meet derives from :class:`BodycamError` and carries a sentence that says what
is wrong and what to do; the command line prints that sentence instead of a traceback.
"""


class BodycamError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(BodycamError):
    """The configuration file is missing, unreadable or holds a bad value."""


class CameraError(BodycamError):
    """The camera could not be opened or stopped delivering frames."""


class CameraUnavailableError(CameraError):
    """The requested camera backend cannot run on this machine (e.g. picamera2 off a Pi)."""
