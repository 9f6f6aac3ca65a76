"""A backend's tests that subclass the contract without its required hooks get one clear error
naming what is missing (run in a child pytest, as a plugin author would run theirs)."""

import subprocess
import sys
import textwrap


def test_missing_hooks_are_named(tmp_path):
    (tmp_path / "test_half_done.py").write_text(textwrap.dedent(
        """
        from comic_studio.testing.contract import BackendContract

        class TestNoHooks(BackendContract):
            pass

        class TestNoQuickSettings(BackendContract):
            backend_name = "storyboard"
        """
    ))  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "comic_studio.testing.plugin",
                           "-k", "deterministic", str(tmp_path)], capture_output=True, text=True, cwd=tmp_path, timeout=120)  # fmt: skip
    assert done.returncode == 1, done.stdout[-3000:]
    assert (
        "TestNoHooks runs the backend contract but does not provide the required hook(s) backend_name, quick_settings"
        in done.stdout
    )
    assert (
        "TestNoQuickSettings runs the backend contract but does not provide the required hook(s) quick_settings;"
        in done.stdout
    )
    assert "2 errors" in done.stdout
