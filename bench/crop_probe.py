"""How the photo becomes a square, measured before it is built: a linear probe
(scikit-learn's logistic regression, 5-fold stratified cross-validation) on
MobileNetV2's pooled features of each photo squashed whole to the square (what
the pipeline does) and resized then centre-cropped (what ImageNet models were
trained and evaluated on).

    python bench/crop_probe.py WEIGHTS SET_FOLDER [SET_FOLDER...]

WEIGHTS: a MobileNetV2 alpha 1.0 no-top weights file. A set folder holds class
folders, or train/ (val/, test/) of class folders: all photos are pooled.
"""

import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

SIZE = 224
SUFFIXES = {".jpg", ".jpeg", ".png"}


def photos(folder):
    """(path, label) of every photo, the label being the class folder's name."""
    folder = Path(folder)
    splits = [d for d in folder.iterdir() if d.name.lower() in {"train", "val", "test"}]
    roots = splits or [folder]
    return [(path, path.relative_to(root).parts[0]) for root in roots for path in sorted(root.rglob("*"))
            if path.suffix.lower() in SUFFIXES]


def square(path, mode):
    with Image.open(path) as image:
        image = image.convert("RGB")
        if mode == "crop":
            scale = SIZE / min(image.size)
            image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BILINEAR)
            left, top = (image.width - SIZE) // 2, (image.height - SIZE) // 2
            image = image.crop((left, top, left + SIZE, top + SIZE))
        else:
            image = image.resize((SIZE, SIZE), Image.BILINEAR)
        return np.asarray(image, dtype="float32")


def features(network, paths, mode):
    import keras

    out = []
    for start in range(0, len(paths), 64):
        batch = np.stack([square(path, mode) for path in paths[start : start + 64]])
        out.append(network.predict(keras.applications.mobilenet_v2.preprocess_input(batch), verbose=0))
    return np.concatenate(out)


def main(weights, folders):
    import keras

    network = keras.applications.MobileNetV2(input_shape=(SIZE, SIZE, 3), include_top=False, pooling="avg",
                                             weights=weights)
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=3000))
    print("| set | photos | squashed | centre-cropped | difference (per fold: mean ± sd) | seconds |\n|---|---|---|---|---|---|")
    for folder in folders:
        start = time.perf_counter()
        found = photos(folder)
        paths, labels = [path for path, _ in found], np.array([label for _, label in found])
        scores = {mode: cross_val_score(probe, features(network, paths, mode), labels, cv=folds)
                  for mode in ("squash", "crop")}
        difference = scores["crop"] - scores["squash"]
        print(f"| {Path(folder).name} | {len(paths)} | {scores['squash'].mean():.3f} | {scores['crop'].mean():.3f} | "
              f"{difference.mean():+.3f} ± {difference.std(ddof=1):.3f} | {time.perf_counter() - start:.0f} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
