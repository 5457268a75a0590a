"""ui/ is a part the agent assembles: it defines its own inputs and outputs and never imports the agent."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

UI = Path(__file__).resolve().parents[2] / "ui"


def imported_modules(path: Path) -> list[str]:
    """Every module ``path`` imports, at module level or inside functions (lazy imports count too)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", sorted(UI.glob("*.py")), ids=lambda p: p.name)
def test_ui_never_imports_the_agent(path):
    upward = [name for name in imported_modules(path) if name == "agent" or name.startswith("agent.")]
    assert upward == [], f"ui/{path.name} imports {upward}"
