"""dvc.yaml's `stages/*.py` dependencies, from what each stage's module imports.

`python -m tools.deps` rewrites them in dvc.yaml; tests/test_dvc_yaml.py
checks that the file is what this writes, so that an edit to any file a
stage runs reruns that stage and nothing else does.
"""

import ast
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = ROOT / "dvc.yaml"


def imported_files(path):
    """The stages/ files that one file imports (at any depth of the file)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            file = ROOT / (name.replace(".", "/") + ".py")
            if name.startswith("stages.") and file.is_file():
                yield file


def closure(module):
    """The files a `python -m <module>` run executes from stages/, the package's __init__ included."""
    seen = {ROOT / "stages/__init__.py"}
    todo = [ROOT / (module.replace(".", "/") + ".py")]
    while todo:
        file = todo.pop()
        if file not in seen:
            seen.add(file)
            todo.extend(imported_files(file))
    return {file.relative_to(ROOT).as_posix() for file in seen}


def written(text):
    """dvc.yaml's text with each stage's code dependencies replaced by its closure."""
    stages = yaml.safe_load(text)["stages"]
    out, stage = [], None
    for line in text.splitlines(keepends=True):
        named = re.match(r"^  (\w+):$", line)
        if named:
            stage = named.group(1)
        if re.match(r"^      - stages/\S+\.py$", line):
            if not out[-1].startswith("      - stages/"):
                module = stages[stage]["cmd"].removeprefix("python -m ")
                out += [f"      - {file}\n" for file in sorted(closure(module))]
            continue
        out.append(line)
    return "".join(out)


if __name__ == "__main__":
    PIPELINE.write_text(written(PIPELINE.read_text()))
