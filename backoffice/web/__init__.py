"""The review web app ("Sichtung"): find, look at, hold and decide on recordings in the browser.

Server-rendered Django views over the catalog (:mod:`backoffice.catalog`); every view checks its roles on
the server, every access and decision goes to the signed office audit log. It never holds the evidence
key: playing and exporting go through the custodian (docs/REVIEW.md).
"""
