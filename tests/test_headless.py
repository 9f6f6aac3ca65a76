"""The headless heart runs without Qt and without torch: core, weights, export and the CLI's demo/render
(through the console script's entry point, which opens the window only without a command).

A child interpreter blocks PySide6 and torch (an import of either raises ImportError) and then does
real work; the demo falls back to the pure-Python pose retrieval on its own.
"""

import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

BLOCKER = textwrap.dedent(
    """
    import importlib.abc, sys

    BLOCKED = ("PySide6", "torch", "diffusers", "transformers", "sentence_transformers")

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, Blocker())
    """
)


def _run(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    script = tmp_path / "child.py"
    script.write_text(BLOCKER + textwrap.dedent(code))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)


def test_core_weights_and_export_import_without_qt_or_torch(tmp_path):
    proc = _run(
        """
        import pkgutil, importlib, sys
        import comic_studio.core, comic_studio.export, comic_studio.weights
        for pkg in (comic_studio.core, comic_studio.weights, comic_studio.export):
            for mod in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
                importlib.import_module(mod.name)
        assert not any(m.split(".")[0] in ("PySide6", "torch") for m in sys.modules)
        print("ok")
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_cli_demo_and_render_without_qt_or_torch(tmp_path):
    proc = _run(
        """
        import sys
        from comic_studio.app import main
        assert main(["demo", "--out", "out", "--quiet"]) == 0
        assert main(["render", "out/demo.comic", "--out", "again.pdf", "--quiet"]) == 0
        assert main(["info", "out/demo.comic"]) == 0
        assert not any(m.split(".")[0] in ("PySide6", "torch") for m in sys.modules)
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "out"
    for name in ("demo.comic", "demo.pdf", "demo.cbz"):
        assert (out / name).stat().st_size > 0
    pages = sorted((out / "pages").glob("page-*.png"))
    assert pages and pages[0].name == "page-001.png"
    with zipfile.ZipFile(out / "demo.cbz") as zf:
        assert "ComicInfo.xml" in zf.namelist()
    assert (tmp_path / "again.pdf").read_bytes().startswith(b"%PDF")
