"""The device program: composition root, recorder, pipeline, runtime, command line, doctor."""

from base import __version__  # noqa: F401  (the device's version, reported in status and manifests)
