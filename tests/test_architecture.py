"""The layers stay as docs/ARCHITECTURE.md draws them: a package imports only the layers below it.

Read from the source (every import statement, module-level or inside a function, TYPE_CHECKING blocks
included), so a lazy import cannot hide an arrow pointing up. The checker is tested on a bad import
of its own making, so it is known to fail when it should.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

#: Top to bottom; each package may import the ones listed (and itself), nothing else of ours.
LAYERS = {
    "backoffice": {"evidence", "comms", "base"},
    "agent": {"camera", "evidence", "ui", "comms", "base"},
    "ui": {"camera", "base"},
    "comms": {"evidence", "camera", "base"},
    "evidence": {"base"},
    "camera": {"base"},
    "base": set(),
}

#: Module cycles allowed, each for a stated reason: a backend chosen by name at run time.
ALLOWED_CYCLES = [
    # camera.source picks a backend by name ("picamera2", "synthetic"); the backends implement its interface.
    {"camera.source", "camera.picam", "camera.synthetic"},
]


def modules() -> dict[str, Path]:
    found = {}
    for package in LAYERS:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports_of(name: str, source: str, is_package: bool) -> set[str]:
    """Every module of ours that ``source`` (the module ``name``) imports, absolute, anywhere in the file."""
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)  # "from pkg import module"
    return {m for m in found if m.split(".")[0] in LAYERS}


def graph() -> dict[str, set[str]]:
    mods = modules()
    edges = {}
    for name, path in mods.items():
        targets = imports_of(name, path.read_text(encoding="utf-8"), path.name == "__init__.py")
        edges[name] = {t for t in targets if t in mods and t != name}
    return edges


def violations(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for source, targets in edges.items():
        layer = source.split(".")[0]
        for target in sorted(targets):
            other = target.split(".")[0]
            if other != layer and other not in LAYERS[layer]:
                bad.append(f"{source} imports {target}: {layer}/ may import only {sorted(LAYERS[layer]) or 'nothing of ours'}")
    return bad


def cycles(edges: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, result, counter = {}, {}, set(), [], [], [0]

    def visit(root):
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        result.append(component)

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return result


def test_every_top_level_package_has_a_layer():
    packages = {p.parent.name for p in REPO.glob("*/__init__.py")} - {"tests"}
    assert packages == set(LAYERS), "a new top-level package needs its row in LAYERS and docs/ARCHITECTURE.md"


def test_no_import_points_up_or_sideways():
    assert violations(graph()) == []


def test_the_checker_sees_a_bad_import_even_inside_a_function():
    bad = "def f():\n    from agent.recorder import State\n"
    edges = {"ui.screens": imports_of("ui.screens", bad, False)}
    assert "ui.screens imports agent.recorder: ui/ may import only ['base', 'camera']" in violations(edges)
    assert violations({"evidence.seal": imports_of("evidence.seal", "from ..camera import segment\n", False)})
    assert violations({"ui.view": imports_of("ui.view", "from .view import x\nimport camera.frames\n", False)}) == []


def test_no_import_cycles_but_the_named_backends():
    found = cycles(graph())
    assert [c for c in found if c not in ALLOWED_CYCLES] == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a.x": {"a.y"}, "a.y": {"a.z"}, "a.z": {"a.x"}, "a.w": {"a.x"}}) == [{"a.x", "a.y", "a.z"}]


def test_the_device_program_loads_nothing_of_the_back_office(tmp_path):
    """What `bodycam run` executes (the CLI, the runtime and everything it starts) never loads backoffice/."""
    code = ("import agent.cli, agent.runtime, agent.demo, agent.doctor_cli; "
            "agent.cli.build_parser()")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    assert "agent.runtime" in loaded
    assert [m for m in loaded if m.split(".")[0] == "backoffice"] == []


@pytest.mark.parametrize("program", ["agent.cli", "backoffice.cli"])
def test_each_program_starts(program, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", program, "--help"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=60)
    assert proc.returncode == 0 and "usage:" in proc.stdout


def test_the_config_loader_needs_only_the_standard_library():
    """install.sh validates a config with Debian's plain python3 before the venv exists (and doctor reads
    it where the project's dependencies may be broken): agent.config must not pull in a third-party module."""
    blocked = ["cryptography", "pyrage", "paho", "numpy", "PIL", "gpiozero", "luma", "av", "django", "smbus2"]
    code = ("import sys\n"
            f"for name in {blocked!r}:\n"
            "    sys.modules[name] = None  # an import of it raises ImportError\n"
            "import agent.config\n"
            "agent.config.Config()\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
