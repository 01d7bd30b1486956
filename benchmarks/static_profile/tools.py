"""Where the binary tools come from: ``cuobjdump`` and ``nvdisasm`` as the Triton wheel ships them
(``triton/backends/nvidia/bin``), else the CUDA toolkit's (``$CUDA_HOME/bin``) or ``PATH``."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Tools:
    cuobjdump: Path
    nvdisasm: Path


def _candidates() -> list[Path]:
    dirs = []
    try:
        import triton

        dirs.append(Path(triton.__file__).parent / "backends" / "nvidia" / "bin")
    except ImportError:
        pass
    dirs.append(Path(os.environ.get("CUDA_HOME", "/usr/local/cuda")) / "bin")
    return dirs


def find() -> Tools:
    found = {}
    for tool in ("cuobjdump", "nvdisasm"):
        for d in _candidates():
            if (d / tool).is_file():
                found[tool] = d / tool
                break
        else:
            on_path = shutil.which(tool)
            if on_path is None:
                raise FileNotFoundError(
                    f"{tool} not found: install triton (its wheel ships it) or set CUDA_HOME to a CUDA toolkit"
                )
            found[tool] = Path(on_path)
    return Tools(**found)
