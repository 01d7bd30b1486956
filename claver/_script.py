"""``python claver/train.py`` run as ``python -m claver.train``.

Python runs a file given by its path as a top-level script, outside its package, so the relative
imports of claver's command modules would fail. Each one starts by importing this module, which
the script's own folder (first on sys.path) provides, and hands itself over to it when it has no
package.
"""

import runpy
import sys
from pathlib import Path


def run_as_module(file: str) -> None:
    """Runs ``file`` (a module of the claver package) as ``__main__`` under its package name, then
    exits. The folder holding the package replaces the script's folder on sys.path: that is where
    ``python -m`` finds the package from the repository root, and the package's own modules
    (``data``, ``text``, ``video``...) must not shadow top-level ones."""
    path = Path(file).resolve()
    sys.path[0] = str(path.parents[1])
    runpy.run_module(f"{path.parent.name}.{path.stem}", run_name="__main__", alter_sys=True)
    sys.exit()
