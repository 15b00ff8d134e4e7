"""dvc.yaml's code dependencies (`stages/`, `classifier/`), from what each stage's module imports.

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
PACKAGES = ("stages.", "classifier.")  # the project's code, as dvc.yaml lists it


def imported_files(path):
    """The project files that one file imports (at any depth of the file)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            file = ROOT / (name.replace(".", "/") + ".py")
            if name.startswith(PACKAGES) and file.is_file():
                yield file


def parents_init(file):
    """The __init__.py of every package holding `file` (Python runs them on import)."""
    folder = file.parent
    while folder != ROOT and (folder / "__init__.py").exists():
        yield folder / "__init__.py"
        folder = folder.parent


def closure(module):
    """The files a `python -m <module>` run executes from the project, packages' __init__ included."""
    seen = set()
    todo = [ROOT / (module.replace(".", "/") + ".py")]
    while todo:
        file = todo.pop()
        if file not in seen:
            seen.add(file)
            todo.extend(imported_files(file))
            todo.extend(init for init in parents_init(file) if init not in seen)
    return {file.relative_to(ROOT).as_posix() for file in seen}


def written(text):
    """dvc.yaml's text with each stage's code dependencies replaced by its closure."""
    stages = yaml.safe_load(text)["stages"]
    out, stage = [], None
    for line in text.splitlines(keepends=True):
        named = re.match(r"^  (\w+):$", line)
        if named:
            stage = named.group(1)
        if re.match(r"^      - (stages|classifier)/\S+\.py$", line):
            if not re.match(r"^      - (stages|classifier)/", out[-1]):
                module = stages[stage]["cmd"].removeprefix("python -m ")
                out += [f"      - {file}\n" for file in sorted(closure(module))]
            continue
        out.append(line)
    return "".join(out)


if __name__ == "__main__":
    PIPELINE.write_text(written(PIPELINE.read_text()))
