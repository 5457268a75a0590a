"""The back office's Django project: settings from the environment and a one-call set-up for commands.

Django is an optional extra (``pip install 'bodycam[office]'``): the device never installs it, and nothing
outside :mod:`backoffice.office`, :mod:`backoffice.catalog` and :mod:`backoffice.web` (the review app) imports
it.
"""
