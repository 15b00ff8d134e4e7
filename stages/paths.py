"""Where each stage writes: the same paths that dvc.yaml declares."""

import json
from pathlib import Path

RAW = Path("data/raw")
CLEAN = Path("data/clean")
CLEAN_IMAGES = CLEAN / "images"
REJECTED = CLEAN / "rejected.csv"
CLEAN_REPORT = Path("metrics/clean.json")
MANIFEST = Path("data/split/manifest.csv")
FEATURES = Path("data/features")
HEAD = Path("models/head.keras")
MODEL = Path("models/model.keras")
TRAIN_LOG = Path("logs/train")
FINETUNE_LOG = Path("logs/finetune")
EVAL_REPORT = Path("metrics/eval.json")
TRAIN_REPORT = Path("metrics/train.json")
FINETUNE_REPORT = Path("metrics/finetune.json")
EXPORT = Path("models/export")
EXPORT_REPORT = Path("metrics/export.json")
PLOTS = Path("plots")
TEST_PREDICTIONS = PLOTS / "test_predictions.csv"

SPLITS = ("train", "val", "test")
EXCLUDE = Path("data/exclude.csv")
SPLIT_REPORT = Path("metrics/split.json")
AUDIT = Path("reports/audit")
AUDIT_REPORT = Path("metrics/audit.json")
FLAGGED = AUDIT / "flagged.csv"


def raw_label(raw):
    """data/raw/cat/x.png -> cat: the class folder an image came from."""
    return Path(raw).relative_to(RAW).parts[0]


def clean_image(raw):
    """data/raw/cat/x.png -> data/clean/images/cat/x.png.jpg (content is always JPEG)."""
    relative = Path(raw).relative_to(RAW)
    if relative.suffix.lower() not in (".jpg", ".jpeg"):
        relative = relative.with_name(relative.name + ".jpg")
    return CLEAN_IMAGES / relative


def model_info(model_path):
    """The JSON file in a model's folder that says how to feed it: backbone, size, classes."""
    return Path(model_path).parent / "model.json"


def read_features(split):
    """Cached features (written by `features`) and labels of one split."""
    import numpy as np

    return np.load(FEATURES / f"{split}_x.npy"), np.load(FEATURES / f"{split}_y.npy")


def read_json(path):
    return json.loads(Path(path).read_text())


def write_json(path, data):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
