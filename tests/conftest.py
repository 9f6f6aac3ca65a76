"""Suite-wide: the app's state folder (recovery files, session caches) is a temporary folder of
this test run, never the user's. Tests that look into it set their own with monkeypatch."""

import os

import pytest

from comic_studio.core.settings import STATE_DIR_ENV


@pytest.fixture(autouse=True, scope="session")
def _state_dir_of_this_run(tmp_path_factory: pytest.TempPathFactory):
    before = os.environ.get(STATE_DIR_ENV)
    os.environ[STATE_DIR_ENV] = str(tmp_path_factory.mktemp("state"))
    yield
    if before is None:
        os.environ.pop(STATE_DIR_ENV, None)
    else:
        os.environ[STATE_DIR_ENV] = before
