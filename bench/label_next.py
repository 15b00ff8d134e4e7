"""Label what matters next, measured so that a gain shows (issue 51): a paired
replay of the labelling queue against random choice and the strategies of
scikit-activeml, on cached features, with enough seeds to tell a gain from noise.

    python bench/label_next.py PROJECT [PROJECT ...] [--seeds 20] [--rounds 15]
        [--strategies random,queue,...] [--budgets 100,200] [--plot FILE] [--workers 2]

Each PROJECT has run `dvc repro features` (its cached features and split are
used as they are). A project whose test split came as a folder of its own
(cifar10-partial) keeps it: the train split is the pool, the test split judges.
Otherwise (flowers, intel) each seed draws half of train + test as the pool and
the other half as test, stratified. Per seed, every strategy starts from the
same 5 labelled photos per class (paired); each round the pipeline's logistic
head (classifier.model.heads.logistic_head) is fitted on the labelled photos,
calibrated on the val split (temperature), scored on test (accuracy and
balanced accuracy), and 20 more photos are labelled by the strategy (the script
plays the person, reading the hidden label).

Strategies: `random`; `queue`, today's label_next (classifier/training/queue.py:
margin of the calibrated head, then k-center over the features); from
scikit-activeml on L2-normalised features: `typiclust` (Hacohen et al., 2022),
`probcover` (Yehuda et al., 2022), `coreset` (Sener & Savarese, 2018), each
seeded, its k-means too (scikit-activeml #503); `margin` (the calibrated head's
margin alone, scikit-activeml's uncertainty score on the same probabilities);
`badge` (Ash et al., 2020: k-means++ over the head's gradient embeddings,
scikit-activeml's, on the pipeline's calibrated head);
`switch`, what label_next ships since (classifier.training.queue.choose):
TypiClust while the labelled photos are fewer than queue.SWITCH per class, the
queue from there. A strategy named `S+pseudo` picks as S does, and its head is
trained on the labelled photos and the pool photos that
classifier.training.pseudo_labels.confident takes (train.pseudo_labels:
confident), with their predicted class: the head fitted on the labelled photos
alone decides which, and the head refitted with them is scored and ranks.

Reported per set, with 95% bootstrap intervals over seeds (resampled in pairs):
the label saving at each budget B (1 - the labels a strategy's mean curve needs
to reach random choice's mean accuracy at B, over B; B counts every labelled
photo, the 5 per class included) and the mean accuracy difference to random
over the curve; the curves with bands (plot).
"""

import argparse
import warnings
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd

START = 5  # labelled photos per class to begin with
STRATEGIES = ("random", "queue", "margin", "typiclust", "probcover", "coreset", "badge", "switch", "switch+pseudo")


def load(project):
    """{split: (features, labels)}, and whether the test split came as a folder of its own."""
    import json

    data = {split: (np.load(project / f"data/features/{split}_x.npy").astype("float32"),
                    np.load(project / f"data/features/{split}_y.npy")) for split in ("train", "val", "test")}
    origin = json.loads((project / "metrics/split.json").read_text()).get("origin", {})
    return data, origin.get("test") == "given"


def pool_and_test(data, given_test, rng):
    """(pool x, pool y), (test x, test y) for one seed."""
    if given_test:
        return data["train"], data["test"]
    x = np.concatenate([data["train"][0], data["test"][0]])
    y = np.concatenate([data["train"][1], data["test"][1]])
    half = np.concatenate([rng.permutation(np.flatnonzero(y == c))[: (y == c).sum() // 2] for c in np.unique(y)])
    rest = np.setdiff1d(np.arange(len(y)), half)
    return (x[half], y[half]), (x[rest], y[rest])


def fitted(x, y, classes, val):
    """The pipeline's head on the labelled photos, and its calibrated probabilities function."""
    from classifier.model.heads import logistic_head, probabilities
    from classifier.report import calibration

    head = logistic_head(x, y, classes, "categorical_crossentropy", balanced=False)[0]
    weights, bias = head.layers[-1].get_weights()

    def softmax(features):  # the head's own layer, as numpy: Keras' predict costs more than the sum
        logits = features @ weights + bias
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return probabilities(exp / exp.sum(axis=1, keepdims=True))

    temperature = calibration.fit_temperature(softmax(val[0]), val[1])
    return lambda features: calibration.scaled(softmax(features), temperature)


def fitted_head(predict, classes):
    """The pipeline's fitted, calibrated head as the scikit-activeml classifier BADGE asks for."""
    from skactiveml.base import SkactivemlClassifier

    class Head(SkactivemlClassifier):
        def fit(self, X, y, sample_weight=None):
            return self

        def predict_proba(self, X):
            return predict(X)

    return Head(classes=np.arange(classes), missing_label=np.nan)


def chosen(strategy, seed, predict, x, unit, y, labelled, classes, batch):
    """`batch` pool indices to label next."""
    from skactiveml.pool import Badge, CoreSet, ProbCover, TypiClust, uncertainty_scores

    from classifier.model.tasks import SingleLabel
    from classifier.training.queue import choose, next_batch

    margin = SingleLabel().certainty  # the queue's uncertainty for one class a photo
    pool = np.setdiff1d(np.arange(len(x)), labelled)
    if strategy == "switch":  # what label_next ships
        return pool[choose(margin(predict(x[pool]), {}), x[pool], x[labelled], batch, classes, seed)]
    if strategy == "random":
        return np.random.default_rng([seed, len(labelled)]).choice(pool, batch, replace=False)
    if strategy == "queue":
        return pool[next_batch(margin(predict(x[pool]), {}), x[pool], x[labelled], batch)]
    if strategy == "margin":
        utilities = uncertainty_scores(predict(x[pool]), method="margin_sampling")
        return pool[np.argsort(-utilities, kind="stable")[:batch]]
    masked = np.full(len(x), np.nan)
    masked[labelled] = y[labelled]
    if strategy == "badge":  # on the calibrated head itself: gradient embeddings of its last layer
        return np.asarray(Badge(random_state=seed).query(x, masked, fitted_head(predict, classes), fit_clf=False,
                                                         batch_size=batch))
    kmeans = {"random_state": seed, "n_init": 1}
    finder = {"typiclust": lambda: TypiClust(random_state=seed, cluster_algo_dict=kmeans),
              "probcover": lambda: ProbCover(n_classes=classes, random_state=seed, cluster_algo_dict=kmeans),
              "coreset": lambda: CoreSet(random_state=seed)}[strategy]()
    return np.asarray(finder.query(unit, masked, batch_size=batch))


def curve(data, given_test, strategy, seed, rounds, batch):
    """[(labelled, accuracy, balanced accuracy)] for one seed and strategy."""
    from sklearn.metrics import balanced_accuracy_score
    from threadpoolctl import threadpool_limits

    warnings.filterwarnings("ignore", category=FutureWarning)  # scikit-learn's notices about LogisticRegressionCV
    rng = np.random.default_rng(seed)
    (x, y), (x_test, y_test) = pool_and_test(data, given_test, rng)
    classes = int(y.max()) + 1
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    labelled = np.concatenate([rng.choice(np.flatnonzero(y == c), START, replace=False) for c in range(classes)])
    strategy, pseudo = strategy.removesuffix("+pseudo"), strategy.endswith("+pseudo")
    points = []
    with threadpool_limits(1):  # one process per core
        for round_ in range(rounds + 1):
            predict = fitted(x[labelled], y[labelled], classes, data["val"])
            if pseudo:
                predict = with_pseudo_labels(predict, x, y, labelled, classes, data["val"])
            guess = predict(x_test).argmax(axis=1)
            points.append((len(labelled), (guess == y_test).mean(), balanced_accuracy_score(y_test, guess)))
            if round_ == rounds or len(labelled) + batch > len(y):  # a small pool ends the curve early
                break
            labelled = np.concatenate([labelled, chosen(strategy, seed, predict, x, unit, y, labelled, classes, batch)])
    return points


def with_pseudo_labels(predict, x, y, labelled, classes, val):
    """The head refitted on the labelled photos and the confident rest of the pool, with its guesses."""
    from classifier.training.pseudo_labels import confident

    rest = np.setdiff1d(np.arange(len(x)), labelled)
    picks, guesses = confident(predict(x[rest]), len(labelled) / classes)
    if not len(picks):
        return predict
    return fitted(np.concatenate([x[labelled], x[rest[picks]]]), np.concatenate([y[labelled], guesses]), classes, val)


def replay(project, strategies, seeds, rounds, batch, workers):
    """DataFrame: strategy, seed, labelled, accuracy, balanced_accuracy."""
    data, given_test = load(project)
    jobs = [(strategy, seed) for seed in range(seeds) for strategy in strategies]
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as processes:
        runs = processes.map(curve, *zip(*[(data, given_test, s, seed, rounds, batch) for s, seed in jobs]))
        rows = [{"strategy": s, "seed": seed, "labelled": n, "accuracy": a, "balanced_accuracy": b}
                for (s, seed), points in zip(jobs, runs) for n, a, b in points]
    return pd.DataFrame(rows)


def needed(counts, accuracies, target):
    """Labels at which the curve first reaches `target` (linear between rounds), or nan."""
    above = np.flatnonzero(accuracies >= target - 1e-12)
    if not len(above):
        return np.nan
    i = above[0]
    if i == 0:
        return float(counts[0])
    a0, a1 = accuracies[i - 1], accuracies[i]
    return float(counts[i - 1] + (counts[i] - counts[i - 1]) * (target - a0) / (a1 - a0))


def saving(counts, random, runs, budget):
    """1 - the labels the mean of `runs` needs to reach the mean of `random` at `budget`, over `budget`."""
    target = np.interp(budget, counts, random.mean(axis=0))
    return 1 - needed(counts, runs.mean(axis=0), target) / budget


def summary(table, budgets, metric="accuracy", draws=2000, reference="random"):
    """Rows per strategy: label saving at each budget and the mean difference to random over the
    curve, each with its 95% bootstrap interval over seeds (the same seeds for both)."""
    wide = table.pivot_table(index=["strategy", "seed"], columns="labelled", values=metric)
    counts = wide.columns.to_numpy(dtype=float)
    random = wide.loc[reference].to_numpy()
    seeds = len(random)
    samples = np.random.default_rng(0).integers(0, seeds, (draws, seeds))
    rows = []
    for strategy in wide.index.get_level_values(0).unique():
        if strategy in ("random", reference):
            continue
        runs = wide.loc[strategy].to_numpy()
        row = {"strategy": strategy}
        for budget in budgets:
            # A draw whose curve never reaches the target saves less than any that does: -inf, not left out.
            draws_ = np.nan_to_num([saving(counts, random[pick], runs[pick], budget) for pick in samples], nan=-np.inf)
            row[f"saving@{budget}"] = (saving(counts, random, runs, budget),
                                       *np.percentile(draws_, [2.5, 97.5], method="inverted_cdf"))  # -inf kept as is
        difference = (runs - random).mean(axis=1)
        row["mean difference"] = (difference.mean(), *np.percentile(difference[samples].mean(axis=1), [2.5, 97.5]))
        per_round = np.percentile((runs - random)[samples].mean(axis=1), 97.5, axis=0)
        row["rounds below"] = int((per_round < 0).sum())  # rounds significantly below the reference
        rows.append(row)
    return rows


def plot(tables, path, metric="accuracy"):
    """Per set, each strategy's accuracy minus random choice's on the same seed, with the
    95% interval of its mean (paired: the seeds' own ups and downs cancel)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(tables), figsize=(5.5 * len(tables), 4), squeeze=False)
    for axis, (name, table) in zip(axes[0], tables.items()):
        wide = table.pivot_table(index=["strategy", "seed"], columns="labelled", values=metric)
        random = wide.loc["random"]
        for strategy in dict.fromkeys(table.strategy):
            if strategy == "random":
                continue
            difference = wide.loc[strategy] - random
            mean = difference.mean()
            spread = 1.96 * difference.std() / np.sqrt(len(difference))
            axis.plot(mean.index, mean, marker=".", label=strategy)
            axis.fill_between(mean.index, mean - spread, mean + spread, alpha=0.15)
        axis.axhline(0, color="grey", linewidth=1)
        axis.set(title=f"{name} ({table.seed.nunique()} seeds, paired)", xlabel="photos labelled",
                 ylabel=f"test {metric.replace('_', ' ')} minus random choice's")
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def interval(value):
    mean, low, high = value
    if np.isnan(mean):
        return "not reached"
    return f"{mean:+.2f} [{'not reached' if np.isinf(low) else f'{low:+.2f}'}, {high:+.2f}]"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("projects", nargs="+", type=Path)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--budgets", default="100,200")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--plot", type=Path, default=Path("bench/label_next.png"))
    parser.add_argument("--table", type=Path, help="also write every point to this CSV")
    parser.add_argument("--replayed", type=Path, help="a CSV written by --table: report it, replay nothing")
    args = parser.parse_args()
    strategies = args.strategies.split(",")
    assert strategies[0] == "random", "random comes first: every figure is relative to it"
    budgets = [int(b) for b in args.budgets.split(",")]
    tables = {}
    replayed = pd.read_csv(args.replayed) if args.replayed else None
    for project in args.projects:
        if replayed is not None:
            table = replayed[replayed.set == project.name].drop(columns="set")
        else:
            table = replay(project, strategies, args.seeds, args.rounds, args.batch, args.workers)
        tables[project.name] = table
        if args.table:
            table.assign(set=project.name).to_csv(args.table, mode="a", index=False, header=not args.table.exists())
        usable = [b for b in budgets if b <= table.labelled.max()]  # a small pool ends its curves early
        for metric in ("accuracy", "balanced_accuracy"):
            print(f"\n{project.name}, {metric.replace('_', ' ')}, {table.seed.nunique()} seeds: random reaches "
                  + ", ".join(f"{np.interp(b, *zip(*table[table.strategy == 'random'].groupby('labelled')[metric].mean().items())):.3f} at {b}"
                              for b in usable))
            rows = summary(table, usable, metric)
            print("| strategy | " + " | ".join(f"label saving at {b}" for b in usable)
                  + " | mean difference | rounds significantly below |")
            print("|---|" + "---|" * (len(usable) + 2))
            for row in rows:
                print(f"| {row['strategy']} | " + " | ".join(interval(row[f'saving@{b}']) for b in usable)
                      + f" | {interval(row['mean difference'])} | {row['rounds below']} |", flush=True)
        if "queue" in strategies:  # what a new strategy adds to today's queue, on the same seeds
            print(f"\n{project.name}, accuracy against today's queue (the same table, the queue as reference):")
            print("| strategy | " + " | ".join(f"label saving at {b}" for b in usable)
                  + " | mean difference | rounds significantly below |")
            print("|---|" + "---|" * (len(usable) + 2))
            for row in summary(table, usable, reference="queue"):
                print(f"| {row['strategy']} | " + " | ".join(interval(row[f'saving@{b}']) for b in usable)
                      + f" | {interval(row['mean difference'])} | {row['rounds below']} |")
    plot(tables, args.plot)
    print(f"\nthe curves: {args.plot}")
    if replayed is None:
        print(f"one round on a pool of 5,000 photos ({args.projects[0].name}'s features), fit and rank: "
              + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in round_seconds(load(args.projects[0])[0])))


def round_seconds(data, pool_size=5000):
    """Seconds of one round (fit and calibrate the head, rank the pool) at the cold start and after it."""
    import time

    from classifier.model.tasks import SingleLabel
    from classifier.training.queue import SWITCH, choose

    (x, y), val = data["train"], data["val"]
    rng = np.random.default_rng(0)
    pool = x[rng.choice(len(x), pool_size)]
    classes = int(y.max()) + 1
    times = []
    for name, per_class in (("cold start", START), ("after it", SWITCH)):
        labelled = np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in range(classes)])
        start = time.perf_counter()
        predict = fitted(x[labelled], y[labelled], classes, val)
        choose(SingleLabel().certainty(predict(pool), {}), pool, x[labelled], 20, classes)
        times.append((name, time.perf_counter() - start))
    return times


if __name__ == "__main__":
    main()
