"""The sealed-segment format both programs share: sealing, hash chain, keys, spool, audit log,
verification and export. Device and back office import it; it imports only :mod:`base`.
"""
