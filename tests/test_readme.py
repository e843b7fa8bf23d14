"""README.md runs as written: every Python block, in order, each in a fresh interpreter, in one
temporary folder where `demo_out/` holds the demos' outputs (their short forms, made by this
session); and every shell block says which environment it runs in."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
SHELLS = ("sh", "bash", "shell")
PYTHON_WORDS = {"python", "python3", "pip", "pip3", "tflstm", "pytest"}
"""Commands that depend on the environment a shell block runs in."""


def blocks(languages: tuple[str, ...]) -> list[tuple[int, str]]:
    """(line number of the opening fence, code) of README.md's fenced blocks in `languages`."""
    found, lines = [], README.read_text().splitlines()
    number = 0
    while number < len(lines):
        opening = re.fullmatch(r"```(\w*)\s*", lines[number])
        if opening:
            end = next(k for k in range(number + 1, len(lines)) if lines[k].startswith("```"))
            if opening.group(1) in languages:
                found.append((number + 1, "\n".join(lines[number + 1 : end]) + "\n"))
            number = end
        number += 1
    return found


def unnamed_environment(code: str) -> str | None:
    """The first command of a shell block that runs Python tools in an environment the block
    did not name (by `source <env>/bin/activate` or a `<env>/bin/...` path), or None."""
    activated = False
    for line in code.replace("\\\n", " ").splitlines():
        line = line.split("#", 1)[0].strip()
        if re.fullmatch(r"(\. |source )\S+/bin/activate", line):
            activated = True
        for command in filter(None, (part.strip() for part in re.split(r"[|;&]+", line))):
            word = command.split()[0]
            if word in PYTHON_WORDS and not activated:
                return command
    return None


def test_every_python_block_runs_in_order(tmp_path, digits_demo, motions_demo, demo_out):
    python_blocks = blocks(("python",))
    assert len(python_blocks) >= 4
    (tmp_path / "demo_out").symlink_to(demo_out, target_is_directory=True)
    for number, code in python_blocks:
        script = tmp_path / f"readme_line_{number}.py"
        script.write_text(code)
        done = subprocess.run([sys.executable, script.name], cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"README.md line {number}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"


def test_every_shell_block_names_its_environment():
    shell_blocks = blocks(SHELLS)
    assert len(shell_blocks) >= 5
    for number, code in shell_blocks:
        assert unnamed_environment(code) is None, (
            f"README.md line {number}: `{unnamed_environment(code)}` runs in no named environment: start the "
            "block with `source .venv/bin/activate` (or .venv-edge), or call `.venv/bin/...`"
        )


@pytest.mark.parametrize("code, unnamed", [
    ("make demo\n", None),
    ("tflstm info m.tflite\n", "tflstm info m.tflite"),
    ("source .venv/bin/activate\ntflstm info m.tflite\n", None),
    (".venv/bin/python -m benchmarks.run \\\n  --suite quick\n", None),
    ("tail -f s.csv | tflstm run m.tflite\n", "tflstm run m.tflite"),
    ("python3.11 -m venv device\ndevice/bin/pip install x\n", None),
    ("pip install x  # then\n", "pip install x"),
])
def test_the_environment_check_finds_unnamed_commands(code, unnamed):
    assert unnamed_environment(code) == unnamed
