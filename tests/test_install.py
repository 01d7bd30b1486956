"""claver's commands from a non-editable install: the package laid out in a folder of its own as
a wheel holds it (setup.py's build_py step: the packages and their package data, nothing else of
the repository), with the extensions this checkout built, and run from another folder. What a
command reads from outside its package (a recipe under configs/, a data file found relative to
the repository) fails here as it would after ``pip install .``."""

import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest
import torch

import claver
import kron_attn
from claver.data.video import write_mp4

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A folder holding the installed packages: build_py's output plus the built extensions."""
    lib = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(lib)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-3000:]
    for built in Path(kron_attn.__file__).parent.glob("_*.so"):
        shutil.copy2(built, lib / "kron_attn" / built.name)
    assert not (lib / "configs").exists() and not (lib / "tests").exists()
    return lib


def run(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


SCRIPTS = ["claver-train", "claver-evaluate", "claver-predict", "claver-prompts", "claver-demo"]
# Runs what each console script runs (its entry point's function) with --help, in one process;
# prints where the packages came from, then each script's exit status and first line.
HELP = """
import contextlib, io, json, sys
from importlib import import_module
import claver, kron_attn
print(json.dumps([claver.__file__, kron_attn.__file__]))
for name, target in json.loads(sys.argv[1]).items():
    module, func = target.split(":")
    sys.argv = [name, "--help"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            status = getattr(import_module(module), func)()
        except SystemExit as e:
            status = e.code
    print(json.dumps([name, status, out.getvalue().splitlines()[0] if out.getvalue() else ""]))
"""


def test_console_scripts_from_the_install(site, tmp_path):
    targets = {ep.name: ep.value for ep in entry_points(group="console_scripts") if ep.name in SCRIPTS}
    assert sorted(targets) == sorted(SCRIPTS), "the package declares other console scripts: reinstall it"
    proc = run(site, tmp_path, "-c", HELP, json.dumps(targets))
    assert proc.returncode == 0, proc.stderr[-3000:]
    first, *results = (json.loads(line) for line in proc.stdout.splitlines())
    assert all(Path(f).is_relative_to(site) for f in first), first
    for name, status, usage in results:
        assert status in (0, None) and usage.startswith(f"usage: {name}"), (name, status, usage)


def test_demo_runs_from_the_install(site, tmp_path):
    out = tmp_path / "demo"
    args = ["--out", str(out), "--per-class", "2", "--epochs", "1", "--runs", "kmt", "--opts", "data.workers", "0"]
    proc = run(site, tmp_path, "-m", "claver.demo", *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1].startswith("demo: kmt_top1="), proc.stdout[-2000:]
    assert (out / "kmt" / "model.safetensors").exists()


def test_predict_with_a_shipped_prompt_file_from_the_install(site, tmp_path):
    torch.manual_seed(0)
    checkpoint = claver.save_checkpoint(claver.create_model("claver-tiny", None, frames=4), tmp_path / "model")
    frames = np.random.default_rng(0).integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    video = write_mp4(tmp_path / "v.mp4", frames, 12)
    labels = "brush hair,cartwheel"
    proc = run(site, tmp_path, "-m", "claver.predict", str(video), "--labels", labels, "--prompts", "hmdb51",
               "--checkpoint", str(checkpoint))  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(line.split("%", 1)[1].strip() for line in proc.stdout.splitlines()) == sorted(labels.split(","))
