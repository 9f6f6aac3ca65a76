"""Mapping torch's native libraries before its import (core.native_libs), in fresh interpreters:
the libraries are mapped without importing the package, the import afterwards works on them, and a
package without extension modules or absent is left alone."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from comic_studio.core.native_libs import extension_modules, preload_extension_modules, vendored_libraries

pytest.importorskip("torch")

_CHILD = r"""
import json, sys
from comic_studio.core.native_libs import preload_extension_modules
mapped = preload_extension_modules("torch")
again = preload_extension_modules("torch")
maps = open("/proc/self/maps").read()
report = {"mapped": mapped, "again": again, "torch_imported": "torch" in sys.modules,
          "libtorch_cpu_mapped": "libtorch_cpu" in maps}
import torch
report["torch_c_file"] = torch._C.__file__
report["sum"] = float(torch.ones(3).sum())
print(json.dumps(report))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_torch_libraries_are_mapped_without_importing_torch_and_the_import_uses_them():
    out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=300, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["mapped"], "torch's _C extension module was not mapped"
    assert report["again"] == report["mapped"]  # idempotent: the second call maps nothing new
    assert not report["torch_imported"]  # mapped, not imported: no module code ran
    assert report["libtorch_cpu_mapped"]  # its dependencies came with it
    assert report["torch_c_file"] in report["mapped"]  # the import used the file that was mapped
    assert report["sum"] == 3.0


def test_a_package_without_extension_modules_or_absent_maps_nothing():
    assert extension_modules("comic_studio") == []
    assert extension_modules("no_such_package_here") == []
    assert preload_extension_modules("no_such_package_here") == []
    # An imported package has nothing left to map (its modules are loaded already).
    assert preload_extension_modules("json") == []


_STACK_CHILD = r"""
import json, sys
import numpy  # as in the app: numpy is in before the torch stack comes
from comic_studio.core.native_libs import preload_torch_stack
mapped = preload_torch_stack()
maps = open("/proc/self/maps").read()
report = {"mapped": mapped, "again": preload_torch_stack(), "scipy_imported": "scipy" in sys.modules,
          "torch_imported": "torch" in sys.modules}
import scipy.linalg
report["det"] = float(scipy.linalg.det(numpy.eye(3) * 2))
lines = open("/proc/self/maps").read().splitlines()
names = {line.rsplit("/", 1)[-1] for line in lines if ".libs/" in line}
# One file per library name: nothing was mapped twice (a copy from two wheels' folders).
report["twice"] = sorted(n for n in names if len({l.split()[-1] for l in lines if l.endswith("/" + n)}) > 1)
print(json.dumps(report))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_the_stack_s_vendored_libraries_are_mapped_once_before_their_packages_import():
    pytest.importorskip("scipy")
    if not vendored_libraries("scipy.libs"):
        pytest.skip("this SciPy wheel vendors no libraries (a distribution build)")
    out = subprocess.run([sys.executable, "-c", _STACK_CHILD], capture_output=True, text=True, timeout=300, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert any("/scipy.libs/" in p for p in report["mapped"]), report["mapped"]
    assert any("_C" in p for p in report["mapped"])  # torch's extension module, as before
    assert not report["scipy_imported"] and not report["torch_imported"]  # mapped, nothing imported
    assert report["again"] == report["mapped"]  # idempotent: the second call maps nothing new
    assert not any("/numpy.libs/" in p for p in report["mapped"])  # numpy was imported: left alone
    assert report["twice"] == []
    assert report["det"] == 8.0
