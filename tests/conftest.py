"""Suite-wide: the app's state folder (recovery files, session caches) is a temporary folder of
this test run, never the user's. Tests that look into it set their own with monkeypatch."""

import os
import sys

import pytest

from comic_studio.core.settings import STATE_DIR_ENV

# Tests start Ray drivers in this process (ray.init): keep Ray's crash-signal handler out, as the app's
# cluster engine does, so a crash later in the run still prints Python's fault report (pytest's
# faulthandler) naming the test.
os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
# The tests' own local Ray instances run their workers at the test run's priority, as the app's local
# cluster does (generation/cluster.py): at Ray's default niceness 15 a worker starves beside any busy
# process and a render of a second outlasts the tests' timeouts.
os.environ.setdefault("RAY_worker_niceness", "0")


@pytest.fixture(autouse=True, scope="session")
def _state_dir_of_this_run(tmp_path_factory: pytest.TempPathFactory):
    before = os.environ.get(STATE_DIR_ENV)
    os.environ[STATE_DIR_ENV] = str(tmp_path_factory.mktemp("state"))
    yield
    if before is None:
        os.environ.pop(STATE_DIR_ENV, None)
    else:
        os.environ[STATE_DIR_ENV] = before


@pytest.fixture(autouse=True)
def _collect_on_the_gui_thread_between_tests():
    """Once a Qt test has handed collection to the GUI thread (tests/ui/conftest.py), the GUI thread's
    timer only runs inside event loops: collect what is due after each test, on this (the GUI) thread,
    as the timer would."""
    yield
    module = sys.modules.get("comic_studio.ui.garbage_collector")
    collector = module.gui_thread_collector() if module is not None else None
    if collector is not None and collector.installed:
        collector.collect_due()
