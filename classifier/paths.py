"""Where each stage writes: the same paths that dvc.yaml declares."""

import base64
import os
from pathlib import Path

RAW = Path("data/raw")
RENAMED = Path("data/renamed.csv")
GIVEN_SPLITS = Path("data/given_splits.json")  # the splits the photos came in (data/raw/<class>/<split>/)
SCAN = Path("data/scan.json")
UNLABELLED_SCAN = Path("data/unlabelled.json")  # scan's summary of data.unlabelled_dir: label_next reruns when it changes
LABEL_SETS = Path("data/label_sets.csv")  # path,labels: each photo of data/raw and its labels (data.labels); header only without
LABELLED = Path("data/labelled.csv")  # path,label: pool photos a person labelled (the app's Label view)
CLEAN = Path("data/clean")
CLEAN_IMAGES = CLEAN / "images"
REJECTED = CLEAN / "rejected.csv"
HASHES = CLEAN / "hashes.csv"
CLEAN_REPORT = Path("metrics/clean.json")
MANIFEST = Path("data/split/manifest.csv")
FEATURES = Path("data/features")
HEAD = Path("models/head.keras")
MODEL = Path("models/model.keras")
UNKNOWN = Path("models/unknown.keras")  # the check for photos of none of the classes (stages/unknown.py)
UNKNOWN_INFO = Path("models/unknown.json")  # its method, k and threshold
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
RELABEL = Path("data/relabel.csv")  # path,label: photos moved to another class after review
REVIEWED = Path("data/reviewed.csv")  # path,finding,decision: the audit's cards decided
DECISIONS_LOCK = Path("data/.decisions.lock")  # held while a decision file is written (classifier/data/review.py)
SPLIT_REPORT = Path("metrics/split.json")
AUDIT = Path("reports/audit")
AUDIT_REPORT = Path("metrics/audit.json")
FLAGGED = AUDIT / "flagged.csv"
LABEL_ISSUES = AUDIT / "label_issues.csv"
LABEL_NEXT = Path("reports/label_next.csv")  # the pool, ranked for labelling (stages/label_next.py)
LABEL_NEXT_REPORT = Path("metrics/label_next.json")
POOL_FEATURES = Path("data/pool_features")  # the backbone's features of the pool's waiting photos (pseudo-labels)
PSEUDO_LABELS = Path("reports/pseudo_labels.csv")  # the pool photos train's head learnt with the class it gave them
POOL_CACHE = Path("data/pool.npz")  # the pool's model outputs, by photo digest: only new photos cost a pass


def printable(path):
    """str(path), each byte of its name that is not UTF-8 written as %XX: a name
    that CSV, JSON, TensorFlow and DVC can all take (an old camera's or Windows
    machine's "caf\\xe9.jpg" becomes "caf%E9.jpg")."""
    # Python reads such a byte b as the lone surrogate U+DC00 + b (PEP 383).
    return "".join(f"%{ord(c) - 0xDC00:02X}" if "\udc80" <= c <= "\udcff" else c for c in str(path))


def exact_name(path):
    """The path's bytes as base64: how a program finds a file whose name `printable` changed."""
    return base64.b64encode(os.fsencode(path)).decode()


def given_split(image, root):
    """root/<class>/<split>/x.jpg -> <split>: the split folder an image came in."""
    return Path(image).relative_to(root).parts[1]


def raw_label(raw):
    """data/raw/cat/x.png -> cat: the class folder an image came from."""
    return printable(Path(raw).relative_to(RAW).parts[0])


def clean_image(raw):
    """data/raw/cat/x.png -> data/clean/images/cat/x.png.jpg (content is always JPEG)."""
    relative = Path(printable(Path(raw).relative_to(RAW)))
    if relative.suffix.lower() not in (".jpg", ".jpeg"):
        relative = relative.with_name(relative.name + ".jpg")
    return CLEAN_IMAGES / relative


def model_info(model_path):
    """The JSON file in a model's folder that says how to feed it: backbone, size, classes."""
    return Path(model_path).parent / "model.json"


