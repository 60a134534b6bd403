"""The README tells the truth: its Python example runs and its classgap commands succeed."""

from __future__ import annotations

import glob
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from classgap.cli import run
from classgap.data.idx import find_fashion_mnist
from classgap.demo import main as demo_main
from classgap.errors import DataFormatError

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)


def commands(prefix: str) -> list[str]:
    lines = [line.split("#")[0].strip() for block in blocks("bash") for line in
             block.splitlines()]
    return [line for line in lines if line.startswith(prefix)]


@pytest.mark.parametrize("code", blocks("python"))
def test_python_example_runs_as_a_script(code: str, tmp_path: Path) -> None:
    """Saved as a file and run by a fresh interpreter, as a user would (process pools
    re-import the script in their workers, which an in-process exec never shows)."""
    script = tmp_path / "example.py"
    script.write_text(code)
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]


def test_readme_shows_the_two_setup_commands_first() -> None:
    first = blocks("bash")[0]
    assert [c.split("#")[0].strip() for c in first.strip().splitlines()] == [
        "make demo", "make test"]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run the demo command of the README in a scratch working directory."""
    cwd = tmp_path_factory.mktemp("readme")
    (demo,) = commands("python -m classgap.demo")
    out = cwd / shlex.split(demo)[shlex.split(demo).index("--out") + 1]
    assert demo_main(["--out", str(out), "--seeds", "2"]) == 0
    return cwd


@pytest.mark.parametrize("command", commands("classgap "))
def test_cli_command_works_as_written(command: str, demo_dir: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    if "fashion-mnist" in command or command.startswith("classgap study"):
        try:
            find_fashion_mnist()
        except DataFormatError:
            pytest.skip("Fashion-MNIST files are not installed here")
    monkeypatch.chdir(demo_dir)
    argv: list[str] = []
    for token in shlex.split(command)[1:]:
        argv.extend(sorted(glob.glob(token)) or [token] if "*" in token else [token])
    code = run(argv)
    assert code in (0, 3) if "--fail-on-drop" in argv else code == 0, command


@pytest.mark.parametrize("doc", [README, README.parent / "docs" / "guide.md"],
                         ids=["README", "guide"])
def test_code_fences_are_whole_lines(doc: Path) -> None:
    """A fence with text after it (```` ``` Your run ````) turns the prose that follows into
    code; every fence must be ``` alone or ``` plus a language, and they must pair up."""
    fences = [line for line in doc.read_text().splitlines() if line.lstrip().startswith("```")]
    assert len(fences) % 2 == 0, doc
    for line in fences:
        assert re.fullmatch(r"\s*```[a-z]*", line), f"{doc.name}: {line!r}"


GUIDE = README.parent / "docs" / "guide.md"


def guide_commands() -> list[str]:
    """The guide's cheap commands (digits, lists, the quick study), continuation lines joined;
    the full studies and long-tail runs take minutes to hours and are measured in bench/."""
    text = "\n".join(re.findall(r"```bash\n(.*?)```", GUIDE.read_text(), flags=re.S))
    joined = re.sub(r"\\\n\s*", " ", text)
    lines = [line.split(" #")[0].strip() for line in joined.splitlines()]
    cheap = ("digits", "classgap list", "classgap --help", "grid.toml",
             "examples/sklearn_train.py")  # logistic regression on digits, ~1 s a run
    return [line for line in lines if line.startswith("classgap ")
            and any(c in line for c in cheap) and "ray" not in line]


def guide_python_commands() -> list[str]:
    text = "\n".join(re.findall(r"```bash\n(.*?)```", GUIDE.read_text(), flags=re.S))
    return [line.split(" #")[0].strip() for line in text.splitlines()
            if line.startswith("python examples/")]


@pytest.fixture(scope="module")
def guide_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch directory with what the guide's commands read: examples/ and grid.toml."""
    import shutil

    cwd = tmp_path_factory.mktemp("guide")
    shutil.copytree(README.parent / "examples", cwd / "examples")
    # the guide's first step for its folder:/npz: commands writes the digits as files
    (make,) = [c for c in guide_python_commands() if "digits_to_files" in c]
    subprocess.run([sys.executable, *shlex.split(make)[1:]], cwd=cwd, check=True,
                   capture_output=True, timeout=300)
    (toml,) = re.findall(r"```toml\n(.*?)```", GUIDE.read_text(), flags=re.S)
    (cwd / "grid.toml").write_text(toml)
    return cwd


def test_the_guide_has_cheap_commands_to_run() -> None:
    found = guide_commands()
    assert any("--train-cmd" in c for c in found) and any("grid.toml" in c for c in found)


@pytest.mark.parametrize("command", guide_commands())
def test_guide_command_works_as_written(command: str, guide_dir: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(guide_dir)
    # as after the guide's `source .venv/bin/activate`: `python` is this interpreter
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    code = run(shlex.split(command)[1:])
    assert code == 0, command


def example_commands() -> list[str]:
    return commands("python examples/")


def test_the_readme_runs_each_training_loop_example() -> None:
    assert {shlex.split(c)[1] for c in example_commands()} >= {
        "examples/lightning_digits.py", "examples/hf_digits.py"}


def test_example_commands_work_as_written(tmp_path: Path) -> None:
    """In order (a later command reads what an earlier one wrote), from a scratch directory
    holding examples/; a command the README says exits 3 (a gate) must exit 3."""
    import shutil

    shutil.copytree(README.parent / "examples", tmp_path / "examples")
    lines = [line for block in blocks("bash") for line in block.splitlines()
             if line.strip().startswith("python examples/")]
    for line in lines:
        command, _, comment = line.partition("#")
        expected = 3 if "exit 3" in comment else 0
        done = subprocess.run([sys.executable, *shlex.split(command)[1:]], cwd=tmp_path,
                              capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == expected, (command, done.stderr[-2000:])
