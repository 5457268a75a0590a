"""Fixtures for the spool, disk-space and audit tests: fake sealed segments and a run summary."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from dataclasses import dataclass

import pytest

#: Lines the crash test wants shown at the end of every run, also without ``-s``.
SUMMARY: list[str] = []


@dataclass(frozen=True)
class FakeSealed:
    """Stands in for evidence.seal's sealed segment: only the attributes the spool's Protocol names."""

    stem: str
    ciphertext: bytes
    manifest: bytes
    seq: int
    ciphertext_sha256: str


def make_sealed(seq: int, payload: bytes | None = None, device: str = "dev1", **extra) -> FakeSealed:
    ciphertext = payload if payload is not None else b"age-encryption.org/v1\n" + hashlib.sha512(b"%d" % seq).digest() * 50
    sha = hashlib.sha256(ciphertext).hexdigest()
    manifest = json.dumps({"device": device, "seq": seq, "ciphertext_sha256": sha, **extra}).encode()
    return FakeSealed(f"{device}-{seq:010d}", ciphertext, manifest, seq, sha)


@pytest.fixture
def sealed():
    """Factory: ``sealed(seq, payload=None, **manifest_fields)`` -> a consistent fake sealed segment."""
    return make_sealed


@pytest.fixture
def summary():
    return SUMMARY


def pytest_terminal_summary(terminalreporter):
    if SUMMARY:
        terminalreporter.section("spool crash test")
        for line in SUMMARY:
            terminalreporter.write_line(line)


def pytest_collection_modifyitems(config, items):
    """Run this directory's ``slow`` soak tests only when asked for (``-m slow``): CI stays fast."""
    if "slow" in (config.getoption("markexpr") or ""):
        return
    here = Path(__file__).parent
    skip = pytest.mark.skip(reason="slow soak test: select with -m slow")
    for item in items:
        if "slow" in item.keywords and here in Path(item.fspath).parents:
            item.add_marker(skip)
