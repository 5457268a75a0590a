"""PyAV, imported where it is needed, with a sentence instead of a traceback where it is missing."""

from __future__ import annotations

from base.errors import CameraUnavailableError


def import_av():
    try:
        import av
    except ImportError:
        raise CameraUnavailableError(
            "the synthetic camera needs PyAV: install the project with its 'sim' extra "
            "(pip install 'bodycam[sim]')") from None
    return av
