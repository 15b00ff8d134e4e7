"""Compare experiments: `python -m classifier.cli.compare` after `dvc exp run` / `dvc queue start`.

Writes reports/comparison.csv and .md (one row per experiment: backbone, test
accuracy, loss and F1 head-only and fine-tuned, training time, model size) and
reports/comparison.png (the same figures as bars).
"""

from pathlib import Path

import matplotlib
import pandas as pd

from classifier.errors import UserError, run

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REPORTS = Path("reports")
SCORES = ("accuracy", "loss", "f1")
COLUMNS = {
    "model.backbone": "backbone",
    "model.image_size": "image_size",
    "model.alpha": "alpha",
    **{f"{model}.{score}": f"{model}_{score}" for model in ("head", "finetune") for score in SCORES},
    "head.seconds": "head_seconds",
    "finetune.seconds": "finetune_seconds",
    "finetune.size_mb": "model_mb",
}


def experiments():
    """Finished experiments (and the workspace) with their params and metrics."""
    import dvc.api

    rows = [r for r in dvc.api.exp_show() if r.get("State") in (None, "Success") and r.get("head.accuracy")]
    if not rows:
        raise UserError("no finished experiments with metrics: run `dvc repro` or `dvc exp run` first")
    table = pd.DataFrame(rows)
    table.insert(0, "experiment", table.Experiment.fillna(table.rev))
    table = table[["experiment", *[c for c in COLUMNS if c in table]]].rename(columns=COLUMNS)
    return table.drop_duplicates(subset=table.columns[1:]).reset_index(drop=True)


def figure(table, path):
    labels = table.experiment + "\n" + table.backbone.astype(str)
    axes = plt.subplots(1, len(SCORES), figsize=(4 + 1.2 * len(table) * len(SCORES), 4))[1]
    for axis, score in zip(axes, SCORES):
        table[[f"head_{score}", f"finetune_{score}"]].set_axis(labels).plot.bar(ax=axis, rot=0)
        axis.set_title(f"test {score}")
        axis.legend(["head only", "fine-tuned"], fontsize=8)
        if score != "loss":
            axis.set_ylim(max(0, table[[f"head_{score}", f"finetune_{score}"]].min().min() - 0.05), 1)
    plt.tight_layout()
    plt.savefig(path, dpi=120)
    plt.close()


def main():
    table = experiments()
    REPORTS.mkdir(exist_ok=True)
    table.to_csv(REPORTS / "comparison.csv", index=False)
    (REPORTS / "comparison.md").write_text(table.to_markdown(index=False, floatfmt=".4g") + "\n")
    figure(table, REPORTS / "comparison.png")
    print(table.to_string(index=False))
    print(f"compare: wrote {REPORTS}/comparison.csv, .md and .png")


if __name__ == "__main__":
    run(main)
