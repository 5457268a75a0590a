"""comms/ is a part, not the program: it never imports the device program or the back office (#12).

Lazy imports inside functions count too, so every import statement in the tree is checked, not just
the module's top.
"""

from __future__ import annotations

import ast
from pathlib import Path

COMMS = Path(__file__).resolve().parents[2] / "comms"
FORBIDDEN = ("agent", "backoffice")


def imported_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_comms_imports_neither_the_agent_nor_the_back_office():
    upward = [f"{path.name}: {name}" for path in sorted(COMMS.glob("*.py")) for name in imported_modules(path)
              if name.split(".")[0] in FORBIDDEN]
    assert upward == []
