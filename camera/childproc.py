"""Running one of the camera's helpers (``python -m camera.…``) as a child process of the agent.

The simulation keeps its encoders outside the agent's process, as the Pi's encoder is: the child
needs the same interpreter and must import this package wherever the agent was started from.
"""

from __future__ import annotations

import os
import sys


def python_module(module: str, *args: str) -> tuple[list[str], dict[str, str]]:
    """The command and environment that run ``python -m module args`` with this package importable."""
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
    return [sys.executable, "-m", module, *args], env
