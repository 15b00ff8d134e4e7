"""params.yaml validation: every mistake is one line naming the key."""

import copy
import sys

import pytest
import yaml

from conftest import ROOT, sh
from stages.errors import UserError
from stages.check import check_all as validate

DEFAULTS = yaml.safe_load((ROOT / "params.yaml").read_text())
DELETE = object()


def with_change(section, key, value):
    params = copy.deepcopy(DEFAULTS)
    params["data"]["local_dir"] = str(ROOT)  # any existing folder
    params["data"]["source"] = "local"
    if value is DELETE:
        del params[section][key]
    else:
        params[section][key] = value
    return params


def test_defaults_are_valid():
    params = validate(with_change("data", "max_per_class", None))
    assert params.model.backbone == "vgg16" and params.model.image_size == 150


@pytest.mark.parametrize(
    "section, key, value, message",
    [
        ("train", "lrr", 0.1, "unknown key 'train.lrr' (allowed: optimizer, loss, lr,"),
        ("model", "backbone", "resnet", "model.backbone = 'resnet' must be one of: vgg16, resnet50v2"),
        ("train", "optimizer", "rmsprop", "train.optimizer = 'rmsprop' must be one of: sgd, adam"),
        ("split", "val", 1.2, "split.val = 1.2 must be in (0, 1)"),
        ("split", "test", 0, "split.test = 0 must be in (0, 1)"),
        ("split", "test", 0.9, "split.val + split.test = 1.05 must be below 1"),
        ("data", "local_dir", None, "data.local_dir is required when data.source is local"),
        ("data", "local_dir", "/no/such/folder", "data.local_dir = '/no/such/folder' is not a folder"),
        ("model", "image_size", 16, "model.image_size = 16 is too small for vgg16 (minimum 32)"),
        ("model", "weights", "missing.h5", "model.weights = 'missing.h5' must be imagenet, none, or the path"),
        ("model", "alpha", 0.6, "model.alpha = 0.6 must be one of: 0.35, 0.5"),
        ("train", "epochs", 2.5, "train.epochs = 2.5 must be an integer"),
        ("train", "lr", 0, "train.lr = 0 must be in (0, inf]"),
        ("head", "dropout", True, "head.dropout = True must be a number"),
        ("train", "seed", DELETE, "missing key 'train.seed'"),
        ("audit", "folds", 1, "audit.folds = 1 must be in [2, inf]"),
        ("audit", "duplicate_similarity", 1.5, "audit.duplicate_similarity = 1.5 must be in (0, 1]"),
        ("evaluate", "tta", "yes", "evaluate.tta = 'yes' must be true or false"),
        ("features", "engine", "auto", "features.engine = 'auto' must be one of: tensorflow, onnxruntime"),
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


def test_unknown_section():
    params = with_change("data", "max_per_class", None)
    params["trian"] = {"lr": 0.1}
    with pytest.raises(UserError, match="unknown section 'trian' \\(allowed: data, clean"):
        validate(params)


def test_check_by_hand_prints_one_line_and_exits_2(tmp_path):
    params = with_change("train", "optimizer", "rmsprop")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    result = sh(tmp_path, sys.executable, "-m", "stages.check", check=False, env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: params.yaml: train.optimizer = 'rmsprop' must be one of: sgd, adam"
    ]
