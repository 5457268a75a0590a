"""The device's brain: configuration, recorder state machine, runtime and command line."""

__version__ = "0.1.0"
