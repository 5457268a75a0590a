"""What many tests need, once: waiting for a condition, and a small synthetic device's config."""

from __future__ import annotations

import time
from pathlib import Path

from agent import config
from agent.demo import prepare_workdir


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def wait_until(predicate, timeout: float, interval: float = 0.05, what: str = "condition") -> None:
    """Like :func:`wait_for`, but a timeout is the test's failure, naming ``what`` it waited for."""
    if not wait_for(predicate, timeout, interval):
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def device_config(tmp_path: Path, **sections: dict) -> config.Config:
    """A small synthetic device under ``tmp_path``: demo keys, 320x240 camera, 2 s pre-event window and
    segments, storage thresholds a test machine meets, the status file in ``tmp_path/run``. ``sections``
    change keys per section, e.g. ``recording={"pre_event_seconds": 1.0}``."""
    cfg = prepare_workdir(config.Config(), tmp_path)
    defaults = {
        "camera": {"backend": "synthetic", "width": 320, "height": 240},
        "recording": {"pre_event_seconds": 2.0, "segment_seconds": 2.0},
        "storage": {"warn_free_mib": 64.0, "critical_free_mib": 16.0},
        "runtime": {"status_file": str(tmp_path / "run" / "status.json")},
    }
    for section in sorted(set(defaults) | set(sections)):
        cfg = config.replace(cfg, section, **{**defaults.get(section, {}), **sections.get(section, {})})
    return cfg


def written(cfg: config.Config, path: Path) -> tuple[config.Config, Path]:
    """``cfg`` written to ``path`` as TOML and read back (what `bodycam run --config` would load)."""
    path.write_text(config.dumps(cfg))
    return config.load(path), path
