"""params.yaml validation: every mistake is one line naming the key."""

import copy
import re
import sys

import pytest
import yaml

from classifier.cli.check import check_all
from classifier.errors import UserError
from conftest import ROOT, sh

DEFAULTS = yaml.safe_load((ROOT / "params.yaml").read_text())
DELETE = object()


def validate(raw):
    return check_all(raw)[0]


def with_change(section, key, value):
    params = copy.deepcopy(DEFAULTS)
    params["data"]["local_dir"] = str(ROOT / "tests")  # any existing folder the pipeline does not write
    params["data"]["source"] = "local"
    if value is DELETE:
        del params[section][key]
    else:
        params[section][key] = value
    return params


# docs/backbones.md's recipe table: backbone, size, blocks, "optimizer, head lr, fine-tune lr (N epochs)".
TABLE = re.findall(r"^\| `(\w+)`(?: \(default\))? \| (\d+) \| (\d+)?[^|]* \| (SGD|Adam), ([\d.]+), ([\d.]+)(?: \((\d+) epochs\))? \|",
                   (ROOT / "docs/backbones.md").read_text(), re.M)


@pytest.mark.parametrize("backbone, size, blocks, optimizer, lr, finetune_lr, epochs", TABLE)
def test_auto_runs_the_documented_recipe_table(backbone, size, blocks, optimizer, lr, finetune_lr, epochs):
    p = validate(with_change("model", "backbone", backbone))
    assert (p.model.image_size, p.train.optimizer, p.train.lr) == (int(size), optimizer.lower(), float(lr))
    assert (p.finetune.lr, p.finetune.epochs) == (float(finetune_lr), int(epochs or 10))
    assert p.finetune.unfreeze == int(blocks or 0)


def test_the_table_covers_the_defaults_backbone():
    assert DEFAULTS["model"]["backbone"] in {row[0] for row in TABLE} and len(TABLE) >= 8


def test_explicit_values_win_over_auto():
    raw = with_change("model", "backbone", "mobilenetv2")
    raw["finetune"]["lr"] = 0.001
    raw["model"]["image_size"] = 96
    p = validate(raw)
    assert (p.model.image_size, p.finetune.lr, p.train.lr) == (96, 0.001, 0.0003)
    assert p.runtime.engine == "onnxruntime"  # measured faster for MobileNetV2 (bench/RESULTS.md)


def test_auto_keeps_frozen_passes_on_tensorflow_where_it_has_a_gpu(monkeypatch):
    from classifier.model import registry

    raw = with_change("model", "backbone", "mobilenetv2")
    monkeypatch.setattr(registry, "gpus", lambda: ["/physical_device:GPU:0"])
    assert validate(raw).runtime.engine == "tensorflow"
    raw["runtime"]["engine"] = "onnxruntime"  # asked for: kept
    assert validate(raw).runtime.engine == "onnxruntime"


@pytest.mark.parametrize(
    "section, key, value, message",
    [
        ("train", "lrr", 0.1, "unknown key 'train.lrr' (allowed: optimizer, loss, lr,"),
        ("model", "backbone", "resnet", "model.backbone = 'resnet' must be one of: vgg16, resnet50v2"),
        ("train", "optimizer", "rmsprop", "train.optimizer = 'rmsprop' must be one of: sgd, adam, or auto"),
        ("finetune", "unfreeze", "all", "finetune.unfreeze = 'all' must be an integer, or auto"),
        ("split", "val", 1.2, "split.val = 1.2 must be in (0, 1)"),
        ("split", "test", 0, "split.test = 0 must be in (0, 1)"),
        ("split", "test", 0.9, "split.val + split.test = 1.05 must be below 1"),
        ("data", "local_dir", None, "data.local_dir is required when data.source is local"),
        ("data", "local_dir", "/no/such/folder", "data.local_dir = '/no/such/folder' is not a folder"),
        ("data", "unlabelled_dir", "/no/such/folder", "data.unlabelled_dir = '/no/such/folder' is not a folder"),
        ("data", "unlabelled_dir", str(ROOT / "tests"), "lies inside data.local_dir, whose folders are classes"),
        ("model", "image_size", 16, "model.image_size = 16 is too small for vgg16 (minimum 32)"),
        ("model", "weights", "missing.h5", "model.weights = 'missing.h5' must be imagenet, none, or the path"),
        ("model", "alpha", 0.6, "model.alpha = 0.6 must be one of: 0.35, 0.5"),
        ("train", "epochs", 2.5, "train.epochs = 2.5 must be an integer"),
        ("train", "lr", 0, "train.lr = 0 must be in (0, inf]"),
        ("head", "dropout", True, "head.dropout = True must be a number"),
        ("train", "seed", DELETE, "missing key 'train.seed'"),
        ("audit", "folds", 1, "audit.folds = 1 must be in [2, 20]"),
        ("split", "val", float("nan"), "split.val = nan must be a finite number"),
        ("train", "lr", float("inf"), "train.lr = inf must be a finite number"),
        ("finetune", "lr", float("nan"), "finetune.lr = nan must be a finite number, or auto"),
        ("model", "image_size", 100_000, "model.image_size = 100000 must be in [1, 1024], or auto"),
        ("train", "batch_size", 10**6, "train.batch_size = 1000000 must be in [1, 1024]"),
        ("finetune", "views", 1000, "finetune.views = 1000 must be in [0, 32]"),
        ("finetune", "unfreeze", 10**4, "finetune.unfreeze = 10000 must be in [0, 100], or auto"),
        ("clean", "max_bytes", 0, "clean.max_bytes = 0 must be in [1, inf]"),
        ("audit", "duplicate_similarity", 1.5, "audit.duplicate_similarity = 1.5 must be in (0, 1]"),
        ("evaluate", "tta", "yes", "evaluate.tta = 'yes' must be true or false"),
        ("runtime", "engine", "fast", "runtime.engine = 'fast' must be one of: tensorflow, onnxruntime, or auto"),
        ("export", "formats", ["onnx", "tflite16"], "export.formats = ['onnx', 'tflite16'] has 'tflite16'; allowed: saved_model,"),
        ("export", "formats", [], "export.formats = [] must be a list of distinct values from: saved_model,"),
        ("export", "formats", "onnx", "export.formats = 'onnx' must be a list"),
        ("export", "formats", ["onnx", "onnx"], "must be a list of distinct values"),
    ],
)
def test_bad_values_name_the_key(section, key, value, message):
    with pytest.raises(UserError) as error:
        validate(with_change(section, key, value))
    assert message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("inside", ["data/raw", "data/raw/cat", "data", "models/export", "."])
def test_local_dir_that_the_pipeline_writes_is_refused(inside, tmp_path, monkeypatch):
    """data.local_dir: data/raw once let `download` delete the user's photos."""
    for name in ("dvc.yaml", "params.yaml"):
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    (tmp_path / inside).mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(tmp_path)
    raw = with_change("data", "local_dir", inside)
    with pytest.raises(UserError, match=r"overlaps (data/raw|models/export|data/.*), which the pipeline deletes"):
        validate(raw)
    pool = with_change("data", "unlabelled_dir", inside)
    with pytest.raises(UserError, match=r"unlabelled_dir = .* overlaps (data/raw|models/export|data/.*), which"):
        validate(pool)
    (tmp_path / "photos").mkdir()
    assert validate(with_change("data", "local_dir", "photos")).data.local_dir == "photos"


def test_a_moved_key_says_where_it_went():
    raw = with_change("data", "max_per_class", None)
    raw["features"] = {"batch_size": 32}
    with pytest.raises(UserError, match=r"^params.yaml: features.batch_size is now runtime.batch_size: rename it$"):
        validate(raw)


def test_resolved_params_are_frozen_and_hold_no_auto():
    import dataclasses

    p = validate(with_change("model", "backbone", "mobilenetv2"))
    values = [value for section in dataclasses.astuple(p) for value in section]
    assert "auto" not in values and p.runtime.engine == "onnxruntime"
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.train.lr = 1.0


def test_unknown_section():
    params = with_change("data", "max_per_class", None)
    params["trian"] = {"lr": 0.1}
    with pytest.raises(UserError, match="unknown section 'trian' \\(allowed: data, clean"):
        validate(params)


def test_check_by_hand_prints_one_line_and_exits_2(tmp_path):
    params = with_change("train", "optimizer", "rmsprop")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    result = sh(tmp_path, sys.executable, "-m", "classifier.cli.check", check=False, env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: params.yaml: train.optimizer = 'rmsprop' must be one of: sgd, adam, or auto"
    ]


def test_check_by_hand_says_what_auto_resolves_to(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(with_change("model", "backbone", "convnext_tiny")))
    result = sh(tmp_path, sys.executable, "-m", "classifier.cli.check", env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.stdout.strip().splitlines()[-1] == (
        "params.yaml: ok; for convnext_tiny this runs model.image_size = 224, runtime.engine = tensorflow, train.optimizer = adam, "
        "train.lr = 0.0003, finetune.unfreeze = 3, finetune.lr = 3e-05, finetune.epochs = 10, train.distribute = none, "
        "model.task = single_label"
    )


def test_docs_document_every_param_with_its_default():
    documented = {}
    for keys, values in re.findall(r"^\| (`[a-z_.]+`(?:, `[a-z_.]+`)*) \| (`[^|]*`) \|", (ROOT / "docs/parameters.md").read_text(), re.M):
        for key, value in zip(re.findall(r"`([^`]+)`", keys), re.findall(r"`([^`]+)`", values)):
            documented[key] = value
    for section, entries in DEFAULTS.items():
        for key, value in entries.items():
            assert f"{section}.{key}" in documented, f"docs/parameters.md lacks {section}.{key}"
            assert yaml.safe_load(documented[f"{section}.{key}"]) == value, f"docs/parameters.md's default of {section}.{key}"
