"""Every module of the package imports first, on its own: an import cycle shows only when the module
that closes it is the first one imported (``python -m talkerd`` starts from another module than the
tests do), so each is imported with no other module of the package loaded before it."""
from __future__ import annotations

import subprocess
import sys

from .conftest import ROOT

FIRST_IMPORTS = r"""
import importlib, pkgutil, sys, traceback
import talkerd
names = sorted(m.name for m in pkgutil.walk_packages(talkerd.__path__, "talkerd.") if not m.name.endswith("__main__"))
failed = []
for name in names:
    for loaded in [m for m in sys.modules if m == "talkerd" or m.startswith("talkerd.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc().strip().splitlines()[-1])
print(len(names))
print("\n".join(failed))
"""


def test_every_module_imports_first_on_its_own():
    done = subprocess.run([sys.executable, "-c", FIRST_IMPORTS], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    count, *failed = done.stdout.strip().splitlines()
    assert int(count) > 50 and failed == [], "\n".join(failed)
