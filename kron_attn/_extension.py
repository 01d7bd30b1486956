"""The compiled extensions' guard: they load only under the torch they were built against.

An extension built against one torch and imported under another fails with an undefined C++
symbol, or worse, loads and misbehaves. setup.py records the torch it compiles against
(kron_attn/_build_info.py); importing kron_attn under any other torch raises one line naming
both versions and the command that rebuilds it.
"""

from __future__ import annotations

import torch


def _rebuild(source: str) -> str:
    return f"pip install --force-reinstall --no-deps {source}"


def check() -> None:
    """Raises ImportError unless the extensions were built against the installed torch."""
    try:
        from . import _build_info
    except ImportError:
        raise ImportError("kron_attn's extensions are not built; from its source tree run: pip install .") from None
    if torch.__version__ != _build_info.TORCH_VERSION:
        raise ImportError(
            f"kron_attn was built against torch {_build_info.TORCH_VERSION} but torch {torch.__version__} is "
            f"installed; rebuild it with: {_rebuild(_build_info.SOURCE)}"
        ) from None


def load():
    """Imports kron_attn._C after check(); an undefined symbol still means a build for another torch."""
    check()
    try:
        from . import _C
    except ImportError as e:
        if "undefined symbol" not in str(e):
            raise
        from . import _build_info

        raise ImportError(
            f"kron_attn's extension does not match torch {torch.__version__} ({str(e).split(':')[-1].strip()}); "
            f"rebuild it with: {_rebuild(_build_info.SOURCE)}"
        ) from None
    return _C
