"""dvc.yaml lists exactly the Python files each stage runs, so that an edit to
any of them reruns the stage and nothing else does."""

import ast

import pytest
import yaml

from conftest import ROOT

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


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


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_are_exactly_its_imports(name):
    spec = STAGES[name]
    module = spec["cmd"].removeprefix("python -m ")
    listed = {dep for dep in spec["deps"] if dep.startswith("stages/")}
    needed = closure(module)
    assert not needed - listed, f"{name}: add to dvc.yaml deps: {sorted(needed - listed)}"
    assert not listed - needed, f"{name}: remove from dvc.yaml deps: {sorted(listed - needed)}"


def test_download_does_not_depend_on_the_model_code():
    # Editing the backbone registry or the export formats must not rerun download.
    assert not {"stages/backbones.py", "stages/formats.py", "stages/inputs.py"} & closure("stages.download")


def test_the_check_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "x.py"
    source.write_text("def f():\n    from stages.images import normalize\n    import stages.paths\n")
    assert {f.name for f in imported_files(source)} == {"images.py", "paths.py"}
