"""The repository's PEP 517 build backend: setuptools', compiling the extensions against the torch
of the environment being installed into.

pip builds in an isolated environment by default, and a torch installed there for the build is
whatever pip picks (the newest); an extension compiled against one torch does not load under
another (undefined symbols). So when the target environment already has torch, the build uses
that torch (its site-packages directory appended to the build's sys.path) and asks pip for no
torch of its own. Without one, the build asks for exactly the torch that the target environment's
pip would install (its constraints and index settings apply there, not always in the build
environment); either way the wheel pins the torch it was built against (setup.py), so pip keeps
or installs exactly that one.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

from build_config import min_torch  # this folder is the backend's path (pyproject.toml)
from setuptools import build_meta as _setuptools

# Environment variables through which pip isolates a build from the target environment.
_ISOLATION = ("PYTHONPATH", "PYTHONNOUSERSITE")
_TORCH = f"torch>={'.'.join(map(str, min_torch()))}"


def _target_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _ISOLATION}


def _target_site() -> str | None:
    """The site-packages directory holding torch in the environment of the interpreter that runs
    this build (the one pip installs into), or None."""
    code = (
        "import importlib.util as u, os; s = u.find_spec('torch'); "
        "print(os.path.dirname(os.path.dirname(s.origin)) if s else '')"
    )
    out = subprocess.run([sys.executable, "-c", code], env=_target_env(), capture_output=True, text=True, check=False)
    return out.stdout.strip() or None


def _torch_for_target() -> str:
    """``torch==X``, X being the torch the target environment's pip resolves ``_TORCH`` (the oldest
    torch we build against, or newer) to (a dry run: metadata only); the plain requirement if that
    cannot be found out."""
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--report", "-", _TORCH]
    try:
        out = subprocess.run(cmd, env=_target_env(), capture_output=True, text=True, check=True, timeout=600)
        for item in json.loads(out.stdout)["install"]:
            if item["metadata"]["name"].lower() == "torch":
                return f"torch=={item['metadata']['version']}"
    except (OSError, ValueError, KeyError, subprocess.SubprocessError):
        pass
    return _TORCH


def _torch_reachable() -> bool:
    """Makes the target environment's torch importable here if the build has none; says whether
    any torch is importable now."""
    if importlib.util.find_spec("torch") is not None:
        return True
    site = _target_site()
    if site is None:
        return False
    sys.path.append(site)  # last: the build's own setuptools and wheel stay first
    importlib.invalidate_caches()
    return importlib.util.find_spec("torch") is not None


def get_requires_for_build_wheel(config_settings=None):
    return [] if _torch_reachable() else [_torch_for_target()]


def get_requires_for_build_editable(config_settings=None):
    return get_requires_for_build_wheel(config_settings)


def get_requires_for_build_sdist(config_settings=None):
    return get_requires_for_build_wheel(config_settings)


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    _torch_reachable()
    return _setuptools.prepare_metadata_for_build_wheel(metadata_directory, config_settings)


def prepare_metadata_for_build_editable(metadata_directory, config_settings=None):
    _torch_reachable()
    return _setuptools.prepare_metadata_for_build_editable(metadata_directory, config_settings)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _torch_reachable()
    return _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    _torch_reachable()
    return _setuptools.build_editable(wheel_directory, config_settings, metadata_directory)


def build_sdist(sdist_directory, config_settings=None):
    _torch_reachable()
    return _setuptools.build_sdist(sdist_directory, config_settings)
