"""The review app's views, one module per page family; each names its roles (:mod:`..access`)."""
