"""Child process of the restart test: the real agent records with the synthetic camera until it is killed.

Usage: ``python crash_agent.py CONFIG``. Starts the agent (without the officer's display and button),
triggers a recording as the button would, and prints ``SEALED <incident id> <segments sealed>`` once
the incident has a sealed segment; then it keeps recording until the parent kills it with SIGKILL.
"""

from __future__ import annotations

import sys
import time

from agent import config
from agent.recorder import Action, Trigger
from agent.runtime import Agent


def main(path: str) -> None:
    agent = Agent(config.load(path), officer_ui=False)
    agent.start()
    while agent.recorder_thread.status.ring.seconds_held < 1.0:
        time.sleep(0.05)
    agent.trigger(Trigger(Action.START, "button"))
    while agent.sealer.sealed < 1:
        time.sleep(0.05)
    print("SEALED", agent.recorder_thread.status.incident_id, agent.sealer.sealed, flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main(sys.argv[1])
