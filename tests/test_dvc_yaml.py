"""dvc.yaml lists exactly the Python files each stage runs, so that an edit to
any of them reruns the stage and nothing else does."""

import pytest
import yaml

from conftest import ROOT
from tools.deps import closure, imported_files, written

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def test_dvc_yaml_is_what_tools_deps_writes():
    text = (ROOT / "dvc.yaml").read_text()
    assert written(text) == text, "run `python -m tools.deps` to update dvc.yaml's code dependencies"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_are_exactly_its_imports(name):
    spec = STAGES[name]
    module = spec["cmd"].removeprefix("python -m ")
    listed = {dep for dep in spec["deps"] if dep.startswith(("stages/", "classifier/"))}
    needed = closure(module)
    assert not needed - listed, f"{name}: add to dvc.yaml deps: {sorted(needed - listed)}"
    assert not listed - needed, f"{name}: remove from dvc.yaml deps: {sorted(listed - needed)}"


def test_download_does_not_depend_on_the_model_code():
    # Editing the backbone registry or the export formats must not rerun download.
    # Nor the image checks: clean's job, downloading copies files as they are.
    assert not {"classifier/model/registry.py", "classifier/model/backbones.py", "classifier/runtime/formats.py",
                "classifier/data/inputs.py", "classifier/data/images.py"} & closure("stages.download")


def test_stages_hold_only_the_pipelines_stages():
    assert {path.stem for path in (ROOT / "stages").glob("*.py")} == {*STAGES, "__init__"}
    assert all(spec["cmd"] == f"python -m stages.{name}" for name, spec in STAGES.items())


def test_the_check_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "x.py"
    source.write_text("def f():\n    from classifier.data.images import normalize\n    import classifier.paths\n")
    assert {f.name for f in imported_files(source)} == {"images.py", "paths.py"}
