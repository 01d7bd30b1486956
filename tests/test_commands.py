"""claver's commands as users type them: by file path and as modules from the repository root, as
installed console scripts, and claver.predict with a prompt file."""

import re
import subprocess
import sys
import sysconfig
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest
import torch

import claver
from claver import predict
from claver.data.video import write_mp4

ROOT = Path(__file__).resolve().parents[1]
BY_PATH = ["claver/train.py", "claver/evaluate.py", "claver/predict.py", "claver/demo.py", "claver/flops.py"]
# A file run by its path is run as its module (claver/_script.py), so ``python -m`` needs a run of
# its own only where there is no file to run: the prompts package.
MODULES = ["claver.prompts"]
SCRIPTS = {
    "claver-train": "claver.train:main",
    "claver-evaluate": "claver.evaluate:main",
    "claver-predict": "claver.predict:cli",
    "claver-prompts": "claver.prompts.__main__:main",
    "claver-demo": "claver.demo:main",
}
REINSTALL = "reinstall the package (pip install --no-build-isolation -e .)"


def run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def helps(commands: dict[str, list[str]]) -> dict[str, tuple[int, str, str]]:
    """Runs each command with --help, all at once (each spends seconds importing torch):
    name -> (exit status, stdout, stderr)."""
    procs = {
        name: subprocess.Popen([*cmd, "--help"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, cmd in commands.items()
    }
    outputs = {name: p.communicate(timeout=300) for name, p in procs.items()}
    return {name: (procs[name].returncode, *outputs[name]) for name in procs}


def assert_usages(results: dict[str, tuple[int, str, str]], named: bool = False) -> None:
    for name, (status, out, err) in results.items():
        usage = f"usage: {name}" if named else "usage:"
        assert status == 0 and out.startswith(usage), (name, out[:200], err[-3000:])


def test_help_by_file_path_and_as_a_module():
    by_path = {path: [sys.executable, path] for path in BY_PATH}
    assert_usages(helps(by_path | {module: [sys.executable, "-m", module] for module in MODULES}))


def test_console_scripts_are_declared():
    tomllib = pytest.importorskip("tomllib")
    with open(ROOT / "pyproject.toml", "rb") as f:
        assert tomllib.load(f)["project"]["scripts"] == SCRIPTS
    installed = {ep.name: ep.value for ep in entry_points(group="console_scripts") if ep.name in SCRIPTS}
    assert installed == SCRIPTS, f"the installed package declares {installed}: {REINSTALL}"


def test_console_script_help():
    declared = {ep.name for ep in entry_points(group="console_scripts")} & set(SCRIPTS)
    if not declared:
        pytest.skip("the installed package declares no console script (test_console_scripts_are_declared fails)")
    scripts = {name: Path(sysconfig.get_path("scripts")) / name for name in sorted(declared)}
    missing = [str(path) for path in scripts.values() if not path.is_file()]
    assert not missing, f"the package declares {sorted(declared)} but {missing} are missing: {REINSTALL}"
    # One script run as a process shows the installed wrappers work; that every entry point answers
    # --help under its own name is tested in one process from the installed layout (test_install).
    name, path = next(iter(scripts.items()))
    assert_usages(helps({name: [str(path)]}), named=True)


@pytest.fixture(scope="module")
def model_and_video(tmp_path_factory):
    """A tiny random CLAVER checkpoint and a 12-frame video."""
    where = tmp_path_factory.mktemp("predict")
    torch.manual_seed(0)
    checkpoint = claver.save_checkpoint(claver.create_model("claver-tiny", None, frames=4), where / "model")
    frames = np.random.default_rng(0).integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    return str(checkpoint), str(write_mp4(where / "v.mp4", frames, 12))


def test_predict_with_a_shipped_prompt_file(model_and_video):
    checkpoint, video = model_and_video
    proc = run(
        sys.executable, "-m", "claver.predict", video, "--labels", "brush hair,cartwheel", "--prompts", "hmdb51",
        "--checkpoint", checkpoint,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [re.fullmatch(r" *(\d+\.\d\d)%  (.+)", line) for line in proc.stdout.splitlines()]
    assert all(rows), proc.stdout
    assert sorted(m.group(2) for m in rows) == ["brush hair", "cartwheel"]
    assert sum(float(m.group(1)) for m in rows) == pytest.approx(100, abs=0.011)


def test_predict_with_a_prompt_file_describing_some_or_none_of_the_labels(model_and_video, capsys):
    checkpoint, video = model_and_video
    predict.main([video, "--checkpoint", checkpoint, "--prompts", "hmdb51", "--labels", "brush hair,juggling balls"])
    assert len(capsys.readouterr().out.strip().splitlines()) == 2  # "juggling balls": templates only
    for prompts, labels, problem in (
        ("hmdb51", "juggling balls,surfing", "prompt file 'hmdb51' describes none of the classes 'juggling balls'"),
        ("nope.json", "brush hair", "no prompt file 'nope.json'"),
    ):
        with pytest.raises(SystemExit) as exit_:
            predict.main([video, "--checkpoint", checkpoint, "--prompts", prompts, "--labels", labels])
        err = capsys.readouterr().err.strip().splitlines()
        assert exit_.value.code == 2 and len(err) == 1 and err[0].startswith(f"claver.predict: {problem}"), err
