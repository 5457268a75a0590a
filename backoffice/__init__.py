"""The back-office program: receiver, evidence store, fleet view and control-room commands.

Its own entry point (``bodycam-office``); the device program never imports it.
"""
