"""Does the audit find wrong label sets? On multi-label projects that
bench/multi_label.py built and kept: 5% of the photos' label sets corrupted
(one label added or taken away, seeded), then the audit's label-issue finder
(classifier/report/audit.py: out-of-sample probabilities from one logistic
regression per label over the cached features, cleanlab's multi-label finder)
run as `audit` runs it. Reports how many it lists and the share of corrupted
photos among its first 50, against the 5% a random ranking would give (the
photos' own, uncorrupted labels can be wrong too: MIML's are).

    python bench/multi_label_audit.py PROJECT [PROJECT ...] [--draws N]
"""

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from classifier.data import manifest  # noqa: E402
from classifier.report.audit import label_set_issues, out_of_sample_sets, pooled_features  # noqa: E402

SHARE, TOP, FOLDS = 0.05, 50, 5


def corrupted(y, seed):
    """A copy of y with SHARE of its rows changed in one label (added or taken
    away), and which rows."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(y), int(SHARE * len(y)), replace=False)
    changed = y.copy()
    labels = rng.integers(0, y.shape[1], len(rows))
    changed[rows, labels] = 1 - changed[rows, labels]
    return changed, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("projects", nargs="+")
    parser.add_argument("--draws", type=int, default=3, help="corruptions per project (seeds 0..N-1)")
    args = parser.parse_args()
    print("| project | draw | corrupted photos | findings | corrupted among the first 50 | random ranking |")
    print("|---|---|---|---|---|---|")
    shares = []
    for project in args.projects:
        here = os.getcwd()
        os.chdir(project)
        try:
            images = manifest.read()
            x, table = pooled_features(images)
        finally:
            os.chdir(here)
        classes = manifest.classes(images, "multi_label")
        y = manifest.label_sets(table.label, classes)
        for draw in range(args.draws):
            given, rows = corrupted(y, draw)
            table = table.assign(label=manifest.label_text(given, classes))
            issues = label_set_issues(table, given, out_of_sample_sets(x, given, FOLDS, draw), classes)
            found = issues.index[:TOP].isin(table.index[rows])
            shares.append(found.mean())
            print(f"| {Path(project).parent.name} | {draw} | {len(rows)} | {len(issues)} | "
                  f"{found.sum()} of {len(found)} ({found.mean():.0%}) | {SHARE:.0%} |")
    print(f"\nmean share of corrupted photos among the first {TOP} findings: {np.mean(shares):.1%} "
          f"({len(shares)} draws)")


if __name__ == "__main__":
    main()
