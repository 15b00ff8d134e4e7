"""Each lever of the recipe, one at a time, on projects that have run once
(`bench/bench.py --sections 7 --keep` leaves them): the fine-tuned model's test
accuracy (95% interval), balanced accuracy and log loss, and the head kept.

    python bench/levers.py PROJECT [PROJECT...] [--levers NAME...]

Each lever is set in params.yaml, `dvc repro evaluate` reruns what it touches
(the features stay cached), and the project's params go back as they were.
"""

import argparse
import json
import subprocess
import time
from pathlib import Path

from tools.scratch import set_params

LEVERS = {
    "defaults": {},
    "head.type dense (before head.type)": {"head": {"type": "dense"}},
    "head.type logistic": {"head": {"type": "logistic"}},
    "train.label_smoothing 0.1": {"train": {"label_smoothing": 0.1}},
    "finetune.schedule cosine": {"finetune": {"schedule": "cosine"}},
    "audit.exclude label_issues": {"audit": {"exclude": "label_issues"}},
    "train.class_weight none": {"train": {"class_weight": "none"}},
    "finetune.ema 0.9": {"finetune": {"ema": 0.9}},
    "finetune.mix mixup": {"finetune": {"mix": "mixup"}},
    "finetune.mix cutmix": {"finetune": {"mix": "cutmix"}},
}


def measure(project, lever):
    params = project / "params.yaml"
    saved = params.read_text()
    set_params(project, LEVERS[lever])
    try:
        start = time.perf_counter()
        subprocess.run(["dvc", "repro", "evaluate"], cwd=project, check=True, capture_output=True)
        seconds = time.perf_counter() - start
    finally:
        params.write_text(saved)
    tuned = json.loads((project / "metrics/eval.json").read_text())["finetune"]
    kept = json.loads((project / "metrics/train.json").read_text())["head"]["type"]
    low, high = tuned["accuracy_ci95"]["low"], tuned["accuracy_ci95"]["high"]
    return (f"| {project.name} | {lever} | {tuned['accuracy']:.3f} [{low:.3f}, {high:.3f}] | "
            f"{tuned['balanced_accuracy']:.3f} | {tuned['loss']:.3f} | {kept} | {seconds:.0f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("projects", nargs="+", type=Path)
    parser.add_argument("--levers", nargs="+", choices=LEVERS, default=list(LEVERS), help="these levers only")
    args = parser.parse_args()
    print("| set | lever | accuracy [95%] | balanced | log loss | head kept | seconds |\n|---|---|---|---|---|---|---|")
    for project in args.projects:
        for lever in args.levers:
            print(measure(project, lever), flush=True)


if __name__ == "__main__":
    main()
