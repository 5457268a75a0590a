"""The evidence catalog (Django app): devices, incidents, segments, holds, four-eyes decisions, tombstones.

Only the back office imports it, after :func:`backoffice.office.bootstrap.setup_django`.
"""
