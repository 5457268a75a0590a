"""The base every package stands on: errors, the config loader, durable files, canonical formats and
id rules. It imports nothing of ours, so any package may import it.
"""

__version__ = "0.1.0"
