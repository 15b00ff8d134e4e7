"""Photos of none of the classes: how well the unknown check tells them apart, on
the shared photo sets (issue 37).

    python bench/unknown.py [--shared ../shared] [--pairs NAME ...] [--keep DIR]

For each pair, the one-switch MobileNetV2 run (`model.backbone: mobilenetv2`,
`model.weights:` the rebuilt alpha 1.0 file, the rest defaults) trains on the
first set; the test split of the first set is in-distribution, every photo of
the second is out-of-distribution. On the fine-tuned model's features, each
score is measured: the pipeline's own (distance to the k-th nearest training
photo, k = 1, 5, 10), class-conditional Mahalanobis distance (shared covariance,
Ledoit-Wolf shrinkage; Lee et al., 2018) and the baseline every peer ships, the
calibrated max-softmax confidence. Per score: AUROC and the false-positive rate
at 95% true-positive rate (the share of unknown photos that pass where 95% of
the known test photos pass); then the pipeline's verdict as it runs (its
threshold set on val): share of test photos flagged, share of unknown photos
caught. Last, predict's cost with the check on and off, per photo.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.covariance import LedoitWolf
from sklearn.metrics import roc_auc_score

from tools.scratch import project

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = "weights/mobilenet_v2_1.0_224_no_top.reconstructed.h5"
PAIRS = {  # name: (trained on, unknown photos, class left out of training)
    "flowers vs intel": ("flowers", "intel", None),
    "intel vs flowers": ("intel", "flowers", None),
    "hymenoptera vs flowers": ("hymenoptera", "flowers", None),
    "dogs-vs-cats vs flowers": ("dogs-vs-cats", "flowers", None),
    "flowers without tulips vs tulips": ("flowers", "flowers/tulips", "tulips"),
}
SUFFIXES = {".jpg", ".jpeg", ".png", ".gif"}


def photos(folder):
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in SUFFIXES)


def without(folder, left_out, target):
    """The photo set's class folders but `left_out`, as links."""
    target.mkdir(parents=True, exist_ok=True)
    for part in sorted(Path(folder).iterdir()):
        if part.name != left_out:
            (target / part.name).symlink_to(part)
    return target


def features_and_scores(repo, paths):
    """Fine-tuned features, calibrated probabilities and the pipeline's unknown scores of image files."""
    import os

    cwd = os.getcwd()
    os.chdir(repo)
    try:
        from classifier.cli import predict
        from classifier.model import unknown

        model, info, classifier = predict.load_predictor("models/model.keras")
        embed = unknown.embedder(classifier)
        limits = predict.limits()
        rows = []
        for start in range(0, len(paths), 32):
            prepared = [predict.prepare((path, None), info["image_size"], *limits) for path in paths[start:start + 32]]
            images = np.stack([pixels for _, pixels in prepared if pixels is not None])
            probabilities, scores = predict.classify(model, info, images, flip=False)
            rows.append((embed.predict_on_batch(images), probabilities, scores))
        return [np.concatenate(parts) for parts in zip(*rows)], info
    finally:
        os.chdir(cwd)


def knn(bank, queries, k):
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    return 1 - np.sort(unit(queries) @ unit(bank).T, axis=1)[:, -k]


def mahalanobis(bank, labels, queries):
    classes = np.unique(labels)
    means = np.stack([bank[labels == c].mean(axis=0) for c in classes])
    precision = LedoitWolf().fit(bank - means[np.searchsorted(classes, labels)]).precision_
    return np.min([np.einsum("ij,jk,ik->i", queries - m, precision, queries - m) for m in means], axis=0)


def rates(known, unknown_scores):
    """AUROC (unknown = positive, higher score = more unknown) and FPR at 95% TPR."""
    truth = np.r_[np.zeros(len(known)), np.ones(len(unknown_scores))]
    auroc = roc_auc_score(truth, np.r_[known, unknown_scores])
    return auroc, float((unknown_scores <= np.quantile(known, 0.95)).mean())


def predict_cost(repo, image_size):
    """Median ms per photo (a batch of one), Keras and ONNX Runtime, with and without the check."""
    import os

    import keras

    from classifier.model import unknown
    from classifier.model.backbones import load_model
    from classifier.runtime import formats

    model = load_model(repo / "models/model.keras")
    checked = unknown.with_score(model, load_model(repo / "models/unknown.keras"))
    plain = keras.Model(model.inputs, {"probabilities": model.output})
    image = np.random.default_rng(0).integers(0, 255, (1, image_size, image_size, 3)).astype("uint8")
    cost = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, network in (("without", plain), ("with", checked)):
            os.makedirs(f"{folder}/{name}")
            runners = {"keras": network.predict_on_batch,
                       "onnx": formats.load(formats.export(network, "onnx", f"{folder}/{name}"))}
            for engine, run in runners.items():
                run(image)
                times = []
                for _ in range(30):
                    start = time.perf_counter()
                    run(image)
                    times.append(time.perf_counter() - start)
                cost[engine, name] = 1000 * statistics.median(times)
    return cost


def measure(name, shared, work, weights):
    trained_on, unknown_set, left_out = PAIRS[name]
    folder = shared / "data" / trained_on
    if left_out:
        folder = without(folder, left_out, work / f"{trained_on}-without-{left_out}")
    repo = project(work / name.replace(" ", "-"), {"data": {"source": "local", "local_dir": str(folder)},
                                                    "model": {"backbone": "mobilenetv2", "weights": str(weights)}})
    start = time.perf_counter()
    subprocess.run(["dvc", "repro", "evaluate"], cwd=repo, check=True, capture_output=True)
    minutes = (time.perf_counter() - start) / 60
    manifest = pd.read_csv(repo / "data/split/manifest.csv")
    train, test = manifest[manifest.split == "train"], manifest[manifest.split == "test"]
    (x_train, _, _), info = features_and_scores(repo, [repo / p for p in train.path])
    (x_test, p_test, s_test), _ = features_and_scores(repo, [repo / p for p in test.path])
    (x_out, p_out, s_out), _ = features_and_scores(repo, photos(shared / "data" / unknown_set))
    labels = train.label.to_numpy()
    scores = {f"knn k={k}": (knn(x_train, x_test, k), knn(x_train, x_out, k)) for k in (1, 5, 10)}
    scores["mahalanobis"] = (mahalanobis(x_train, labels, x_test), mahalanobis(x_train, labels, x_out))
    scores["max softmax"] = (-p_test.max(axis=1), -p_out.max(axis=1))
    threshold = info["unknown"]["threshold"]
    eval_json = pd.read_json(repo / "metrics/eval.json", typ="series")
    accuracy = eval_json["finetune"]["accuracy"]
    rows = [(name, method, *rates(known, out)) for method, (known, out) in scores.items()]
    verdict = (f"k = {info['unknown']['k']}, threshold {threshold:.3f}: test flagged {(s_test > threshold).mean():.3f}, "
               f"unknown caught {(s_out > threshold).mean():.3f}; {len(x_test)} test, {len(x_out)} unknown photos; "
               f"test accuracy {accuracy:.3f}; {minutes:.1f} min")
    return rows, verdict, repo, info["image_size"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--pairs", nargs="+", choices=PAIRS, default=list(PAIRS))
    parser.add_argument("--keep", type=Path, help="build the projects here and keep them")
    args = parser.parse_args()
    shared = args.shared.resolve()
    work = args.keep or Path(tempfile.mkdtemp(prefix="unknown-bench-"))
    print("| pair | score | AUROC | FPR at 95% TPR |\n|---|---|---|---|")
    verdicts, repo, size = [], None, None
    for name in args.pairs:
        rows, verdict, repo, size = measure(name, shared, work, shared / WEIGHTS)
        for row in rows:
            print(f"| {row[0]} | {row[1]} | {row[2]:.3f} | {row[3]:.3f} |", flush=True)
        verdicts.append(f"- {name}: {verdict}")
    print("\nThe pipeline's verdict (threshold from the val split):\n" + "\n".join(verdicts))
    cost = predict_cost(repo, size)
    print(f"\npredict, one photo ({args.pairs[-1]} model), median ms: " + ", ".join(
        f"{engine} {cost[engine, 'without']:.1f} -> {cost[engine, 'with']:.1f} ({cost[engine, 'with'] / cost[engine, 'without']:.2f}x)"
        for engine in ("keras", "onnx")))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
