"""The review of the audit: its findings as cards, and the decisions taken on
them written back as ordinary changes to tracked files.

- data/exclude.csv (path,reason): photos that leave every split (`split` reads it);
- data/relabel.csv (path,label): photos that move to another class, or with
  several labels per photo take another label set, space-separated (`split` reads it);
- data/reviewed.csv (path,finding,decision): every card decided (exclude,
  relabel or keep), so that it does not come back after the next audit;
- data/labelled.csv (path,label,digest): unlabelled pool photos given a class
  from label_next's queue (or none: none of the classes; with several labels per
  photo, a label set, space-separated), with the digest of the photo labelled
  (`download` reads it: classifier/data/pool.py).

A decision is written under one file lock (DECISIONS_LOCK: two browser tabs, two
app processes or a script at once each keep their line), each file rewritten
whole in UTF-8 to a temporary file, flushed to disk and renamed over it
(classifier/files.py): a crash leaves the old file or the new one, never half;
earlier lines are kept. A relabel writes data/relabel.csv before
data/reviewed.csv, so that a crash between the two leaves the card to decide
again, never a card marked decided whose decision is lost.
"""

import csv
import io
from pathlib import Path

import pandas as pd
from filelock import FileLock

from classifier.data import manifest, pool
from classifier.errors import UserError
from classifier.files import replaced
from classifier.paths import AUDIT, CLEAN_IMAGES, DECISIONS_LOCK, EXCLUDE, LABEL_NEXT, LABELLED, RELABEL, REVIEWED

HEADERS = {EXCLUDE: ["path", "reason"], RELABEL: ["path", "label"], REVIEWED: ["path", "finding", "decision"],
           LABELLED: ["path", "label", "digest"]}


def read(file):
    """The file's rows as a DataFrame of strings (its header alone where it is missing or empty)."""
    try:
        return pd.read_csv(file, dtype=str, keep_default_na=False)
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return pd.DataFrame(columns=HEADERS[file])


def decided():
    """The lock every decision is written under (re-entrant in one thread)."""
    DECISIONS_LOCK.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(DECISIONS_LOCK, is_singleton=True)  # one object per file: nested `with` re-enters


def append(file, row):
    """Add one line to `file` (its header first where it is missing or empty), atomically."""
    with decided():
        rows = list(csv.reader(io.StringIO(file.read_text(encoding="utf-8")))) if file.exists() else []
        header = HEADERS[file]
        rows = [r for r in rows if r] or [header]
        if rows[0] != header and header[:len(rows[0])] == rows[0]:  # an earlier version's file: lines padded
            rows = [header] + [r + [""] * (len(header) - len(r)) for r in rows[1:]]
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows([*rows, row])
        with replaced(file) as part:
            part.write_text(text.getvalue(), encoding="utf-8")


def several():
    """Whether photos carry several labels (model.task multi_label): a relabel is then a label set."""
    from classifier import params

    return params.load().model.task == "multi_label"


def classes():
    """What a photo can be relabelled to: the classes, or with several labels per photo, the labels."""
    if several():
        return manifest.classes(manifest.read(), "multi_label")
    return sorted(folder.name for folder in CLEAN_IMAGES.iterdir() if folder.is_dir())


def check_clean(path):
    """`path` as the audit writes it (data/clean/images/<class>/...), or UserError."""
    resolved = Path(path).resolve()
    if not resolved.is_relative_to(CLEAN_IMAGES.resolve()) or not resolved.is_file():
        raise UserError(f"{path} is not a clean image (paths look like {CLEAN_IMAGES}/<class>/<file>)")
    return path


def exclude(path, finding, reason):
    check_clean(path)
    with decided():
        if path not in set(read(EXCLUDE).path):  # listed once, however many findings point at it
            append(EXCLUDE, [path, reason])
        append(REVIEWED, [path, finding, "exclude"])


def relabel(path, finding, label):
    """`label`: a class, or with several labels per photo, the new label set, space-separated."""
    sets, known = several(), classes()
    kind, kinds = ("label", "labels") if sets else ("class", "classes")
    for name in label.split() if sets else [label]:
        if name not in known:
            raise UserError(f"'{name}' is not a {kind} ({kinds}: {', '.join(known)})")
    with decided():
        append(RELABEL, [check_clean(path), label])
        append(REVIEWED, [path, finding, "relabel"])


def keep(path, finding):
    append(REVIEWED, [check_clean(path), finding, "keep"])


def card(finding, path, label, split, detail, suggestion="", other=""):
    return {"finding": finding, "path": path, "label": label, "split": split, "detail": detail,
            "suggestion": suggestion, "other": other}


def cards():
    """Every finding of the last audit, one card each: finding, path (the clean image
    a decision acts on), label, split, detail, suggestion (a label, or ""), other
    (a second photo to show beside it, or "")."""
    def rows(name):
        return read(AUDIT / f"{name}.csv").to_dict("records") if (AUDIT / f"{name}.csv").exists() else []

    return [
        *(card("label_issue", r["path"], r["label"], r["split"], f"cleanlab suggests {r['suggestion']} "
               f"(label quality {r['score']})", suggestion=r["suggestion"]) for r in rows("label_issues")),
        # A pair: the decision is about the second photo; the first is shown beside it.
        *(card("near_duplicate", r["duplicate_path"], r["duplicate_label"], r["duplicate_split"],
               f"near-identical to {r['path']} ({r['split']}, {r['label']}); similarity {r['similarity']}",
               other=r["path"]) for r in rows("near_duplicates")),
        *(card("outlier", r["path"], r["label"], r["split"], f"least like the rest (score {r['score']})")
          for r in rows("outliers")),
        # The clean image kept; the copy under the other label was dropped by clean.
        *(card("conflict", r["kept"], r["kept_label"], "", f"the same picture came in as {r['label']} too "
               f"({r['path']}, dropped by clean)", suggestion=r["label"], other=r["path"]) for r in rows("conflicts")),
    ]


def queue():
    """(cards not yet decided, how many cards in all)."""
    done = set(zip(read(REVIEWED).path, read(REVIEWED).finding))
    found = cards()
    return [card for card in found if (card["path"], card["finding"]) not in done], len(found)


def to_label(root):
    """(rows of label_next's queue not yet labelled: the next ones in rank order, then
    those the unknown check flags; how many are labelled)."""
    labelled = set(pool.read_labelled(root)) if root is not None else set()
    rows = pd.read_csv(LABEL_NEXT, dtype=str, keep_default_na=False) if LABEL_NEXT.exists() else None
    if rows is None or root is None:
        return [], len(labelled)
    waiting = rows[rows.queue.isin(["next", "unknown"]) & ~rows.path.isin(labelled)]
    return waiting.to_dict("records"), len(labelled)


def label_photo(root, path, label, known):
    """Write `path` (a photo of label_next's queue) to data/labelled.csv as `label`: one of
    the model's classes `known` or pool.NONE (none of them), or with several labels per
    photo a list of them (written space-separated; empty: none of the labels)."""
    names = label if isinstance(label, list) else [label]
    kind, kinds = ("label", "labels") if isinstance(label, list) else ("class", "classes")
    for name in names:
        if name not in [*known, pool.NONE]:
            raise UserError(f"'{name}' is not a {kind} ({kinds}: {', '.join(known)})")
    file = pool.located(root, path)
    with decided():  # two tabs saving one photo: the second is told it is labelled already
        if not pool.is_pool_photo(root, file) or path not in {row["path"] for row in to_label(root)[0]}:
            raise UserError(f"{path} is not a photo waiting in {LABEL_NEXT} (or it is labelled already)")
        append(LABELLED, [path, " ".join(sorted(names)), pool.digest(root, file)])
