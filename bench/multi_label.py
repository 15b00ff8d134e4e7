"""Several labels per photo on real photos: the MIML natural scenes of ../shared
(1,000 photos, 5 labels, 1.24 a photo) through the real `dvc repro`, with the
one switch of the README (MobileNetV2, the rebuilt alpha 1.0 weights loaded by
path) and nothing else changed. Prints the markdown rows for bench/RESULTS.md:
mAP, macro F1 (at each label's threshold, and at a global 0.5 on the
uncalibrated outputs), micro F1, subset accuracy and Hamming loss with their 95%
intervals, per-label F1, and the minutes per stage.

    python bench/multi_label.py [--keep DIR] [--seed S]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tools.scratch import project  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
PHOTOS = SHARED / "data/miml-scenes"
WEIGHTS = SHARED / "weights/mobilenet_v2_1.0_224_no_top.reconstructed.h5"
SCORES = ("map_macro", "f1_macro", "f1_micro", "subset_accuracy", "hamming_loss")


def run(folder, seed):
    params = {"data": {"source": "local", "local_dir": str(PHOTOS), "labels": str(PHOTOS / "labels.csv")},
              "model": {"backbone": "mobilenetv2", "weights": str(WEIGHTS)}}
    if seed is not None:
        params["split"], params["train"] = {"seed": seed}, {"seed": seed}
    root = project(folder / "project", params)
    start = time.perf_counter()
    log = folder / "repro.log"
    with open(log, "w") as out:
        subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=root, stdout=out, stderr=subprocess.STDOUT, check=True)
    return root, time.perf_counter() - start


def interval(scores, name):
    ci = scores[f"{name}_ci95"]
    return f"{scores[name]:.3f} ({ci['low']:.3f}-{ci['high']:.3f})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", help="build the project in this folder and keep it")
    parser.add_argument("--seed", type=int, help="split.seed and train.seed (default: params.yaml's)")
    args = parser.parse_args()
    folder = Path(args.keep or tempfile.mkdtemp(prefix="multi_label_"))
    folder.mkdir(parents=True, exist_ok=True)
    root, seconds = run(folder, args.seed)
    report = json.loads((root / "metrics/eval.json").read_text())
    split = json.loads((root / "metrics/split.json").read_text())
    print(f"MIML scenes, {split['train']}/{split['val']}/{split['test']} photos, seed {args.seed}, "
          f"`dvc repro` {seconds / 60:.1f} min on this machine\n")
    print("| model | " + " | ".join(SCORES) + " | macro F1 at a global 0.5 |")
    print("|---|" + "---|" * (len(SCORES) + 1))
    for name in ("head", "finetune"):
        scores = report[name]
        print(f"| {name} | " + " | ".join(interval(scores, s) for s in SCORES) + f" | {scores['f1_macro_at_half']:.3f} |")
    table = pd.read_csv(root / "plots/per_label_finetune.csv")
    print("\nper label (fine-tuned):\n")
    print(table.to_markdown(index=False))
    for stage in ("train", "finetune"):
        seconds = json.loads((root / f"metrics/{stage}.json").read_text())["head" if stage == "train" else stage].get("seconds")
        print(f"\n{stage}: {seconds} s")
    print(f"\nrecipe: {report['recipe']}")


if __name__ == "__main__":
    main()
