"""Tiny generated photo sets and the tests' fast params: what tests/ and bench/ share."""

import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

# Fast settings for every pipeline test: random weights, tiny images, few epochs.
TEST_PARAMS = {
    "data": {"source": "local"},
    "split": {"val": 0.25, "test": 0.25},
    "model": {"backbone": "vgg16", "weights": "none", "image_size": 32},
    "runtime": {"batch_size": 16},
    # Random-weight features of one-colour images are all alike: only exact copies are duplicates.
    "audit": {"duplicate_similarity": 0.9999},
    "train": {"optimizer": "adam", "lr": 0.003, "batch_size": 8, "epochs": 25, "patience": 25},
    # min_val 0: the tests' val splits have 4 photos per class, where finetune would skip its epochs.
    "finetune": {"lr": 0.0001, "epochs": 2, "min_val": 0},
    # Each export format costs seconds per run; test_pipeline.py checks them all.
    "export": {"formats": ["tflite"]},
}

COLORS = {"cat": (200, 70, 60), "dog": (60, 80, 200), "bird": (70, 190, 70), "fish": (230, 220, 60),
          "frog": (40, 40, 40), "horse": (220, 220, 230)}


def make_images(root, per_class=16, classes=("cat", "dog"), seed=0):
    """Noisy photos-to-be: each class has its own dominant colour, so it is learnable."""
    rng = np.random.default_rng(seed)
    for name in classes:
        folder = Path(root) / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            height, width = rng.integers(40, 72, size=2)
            pixels = rng.normal(COLORS[name], 45, (height, width, 3))
            Image.fromarray(np.clip(pixels, 0, 255).astype("uint8")).save(folder / f"{name}.{i}.jpg")
    return Path(root)


def environment():
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.update(DVC_NO_ANALYTICS="1", PYTHONUNBUFFERED="1")
    return env


# Several labels per photo: each label lights one colour channel.
CHANNELS = {"red": 0, "green": 1, "blue": 2}


def make_label_sets(root, count=60, seed=0):
    """A flat folder of `count` photos and its labels CSV (path,labels): each photo
    has each label of CHANNELS with probability 0.4, and that channel bright; one
    photo in ten has none. Returns (folder, labels CSV)."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "photos"
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["path,labels"]
    for i in range(count):
        given = [] if i % 10 == 9 else [name for name in CHANNELS if rng.random() < 0.4]
        color = [220 if name in given else 40 for name in CHANNELS]
        pixels = rng.normal(color, 30, (48, 48, 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype("uint8")).save(folder / f"{i}.jpg")
        rows.append(f"{i}.jpg,{' '.join(given)}")
    labels = Path(root) / "labels.csv"
    labels.write_text("\n".join(rows) + "\n")
    return folder, labels
