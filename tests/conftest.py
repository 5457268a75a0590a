"""Shared test tools: real H.264 from the synthetic camera, decoded back with PyAV."""

from __future__ import annotations

import os

import pytest

from camera.synthetic import SyntheticSource


@pytest.fixture
def small_source():
    """A fast, small synthetic camera: 160x120 at 30 fps, one keyframe per second."""
    def make(**kw):
        args = dict(width=160, height=120, fps=30.0, bitrate=300_000, gop_frames=30, realtime=False)
        args.update(kw)
        return SyntheticSource(**args)
    return make


@pytest.fixture(scope="session")
def django_db(tmp_path_factory):
    """The back office's catalog database, migrated from empty once per process (SQLite in a temp data
    directory, or the PostgreSQL server DATABASE_URL names)."""
    data = tmp_path_factory.mktemp("office-data")
    os.environ.setdefault("BODYCAM_OFFICE_DATA", str(data))
    os.environ.setdefault("BODYCAM_OFFICE_SECRET_KEY", "tests-only-" + "s" * 40)  # signs the review app's sessions
    from backoffice.office.bootstrap import setup_django

    setup_django()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    return data


@pytest.fixture
def db(django_db):
    """An empty catalog (the roles are created again by the flush's post-migrate signal)."""
    from django.core.management import call_command

    call_command("flush", interactive=False, verbosity=0)
    yield


DEBIAN_ROOT_TESTS = ("tests/install/test_dev_setup.py", "tests/install/test_chroot.py",
                     "tests/install/test_office_install.py")


def pytest_collection_modifyitems(config, items):
    """Leave out ``slow`` soak tests unless the -m expression names them.

    Not ``-m 'not slow'`` in addopts: pytest keeps only the last -m, so a command-line
    ``-m "not system"`` would bring the soaks back in.
    """
    for item in items:  # .ci/dev's system run: the Debian-root tests share one worker, in order
        if item.nodeid.startswith(DEBIAN_ROOT_TESTS):
            item.add_marker(pytest.mark.xdist_group("debian-root"))
    if "slow" in (config.getoption("markexpr") or ""):
        return
    soaks = [item for item in items if item.get_closest_marker("slow")]
    if soaks:
        config.hook.pytest_deselected(items=soaks)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]
