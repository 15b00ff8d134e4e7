"""Load params.yaml and check every key and value before any work starts.

`dvc exp run -S` writes whatever key it is given, so a typo would otherwise be
silently ignored: every stage validates the whole file, and unknown keys fail.
`load()` returns frozen dataclasses, one per section (`p.train.lr`). Values
whose allowed set is another module's fact (backbone names, export formats,
what `auto` means for a backbone) are checked by that module:
`registry.load()` is `load()` with every `auto` resolved, for the stages that
build a network; the data stages use `load()`, so that editing the backbone
registry does not rerun `download`. `python -m classifier.cli.check` checks the whole
file by hand.
"""

import math
from dataclasses import make_dataclass, replace
from pathlib import Path

import yaml

from classifier.errors import UserError

PARAMS_FILE = Path("params.yaml")
SOURCES = ("petimages", "kaggle", "cifar10", "local")
LOSSES = ("categorical_crossentropy", "binary_crossentropy")
TASKS = ("single_label", "multi_label")  # one class per photo (its folder) | several (data.labels)


def choice(*allowed):
    def check(value):
        if value not in allowed:
            return f"must be one of: {', '.join(map(str, allowed))}"

    return check


def number(low=None, high=None, *, integer=False, open_low=False, open_high=False, null=False):
    """A number in [low, high]; open_low/open_high exclude the bounds."""

    def check(value):
        if value is None and null:
            return None
        kind = int if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kind):
            return f"must be {'an integer' if integer else 'a number'}" + (" or null" if null else "")
        if not math.isfinite(value):
            return "must be a finite number"
        too_low = low is not None and (value <= low if open_low else value < low)
        too_high = high is not None and (value >= high if open_high else value > high)
        if too_low or too_high:
            left = "(" if open_low else "["
            right = ")" if open_high else "]"
            return f"must be in {left}{low if low is not None else '-inf'}, {high if high is not None else 'inf'}{right}"

    return check


def auto_or(check):
    """`auto` (the backbone's recipe: registry.resolve) or a value `check` accepts."""

    def either(value):
        if value != "auto":
            problem = check(value)
            return problem and f"{problem}, or auto"

    return either


def boolean(value):
    if not isinstance(value, bool):
        return "must be true or false"


def subset(*allowed):
    """A non-empty list of distinct values from `allowed`."""

    def check(value):
        if not isinstance(value, list) or not value or len(set(map(str, value))) < len(value):
            return f"must be a list of distinct values from: {', '.join(allowed)}"
        unknown = [v for v in value if v not in allowed]
        if unknown:
            return f"has {unknown[0]!r}; allowed: {', '.join(allowed)}"

    return check


def names(value):
    """A list of strings (which ones: checked by the module that owns them)."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return "must be a list of names"


def text(null=False):
    def check(value):
        if value is None and null:
            return None
        if not isinstance(value, str) or not value:
            return "must be a non-empty string" + (" or null" if null else "")

    return check


# Upper bounds, so that an absurd value stops here with its key named rather
# than as an out-of-memory error hours later: a batch of 32 images of 1,024 px
# is already 400 MB of floats, K views are K copies of the training set on disk,
# and no backbone here has more than 100 blocks to unfreeze.
MAX_IMAGE_SIZE = 1024
MAX_BATCH = 1024
MAX_VIEWS = 32
MAX_FOLDS = 20
MAX_BLOCKS = 100
MAX_EPOCHS = 10_000
MAX_UNITS = 16_384
MAX_GALLERY = 1_000
MAX_CALIBRATION = 10_000

SCHEMA = {
    "data": {
        "source": choice(*SOURCES),
        "local_dir": text(null=True),
        "labels": text(null=True),  # check_together: a file, with source local
        "unlabelled_dir": text(null=True),
        "url": text(null=True),
        "max_per_class": number(1, integer=True, null=True),
    },
    "clean": {
        "min_side": number(1, integer=True),
        "max_pixels": number(1, integer=True),
        "max_bytes": number(1, integer=True),
    },
    "split": {
        "val": number(0, 1, open_low=True, open_high=True),
        "test": number(0, 1, open_low=True, open_high=True),
        "seed": number(0, integer=True),
        "group": choice("duplicates", "none"),
    },
    "audit": {
        "folds": number(2, MAX_FOLDS, integer=True),
        "duplicate_similarity": number(0, 1, open_low=True),
        "outliers": number(0, 1),
        "gallery": number(1, MAX_GALLERY, integer=True),
        "exclude": choice("none", "label_issues"),
    },
    "model": {
        "backbone": text(),  # registry.resolve
        "weights": text(),
        "image_size": auto_or(number(1, MAX_IMAGE_SIZE, integer=True)),
        "alpha": number(0, open_low=True),  # registry.resolve
        "pooling": choice("avg", "flatten"),
        "task": choice("auto", *TASKS),  # resolved by load(): task()
    },
    # What every frozen pass shares: features, finetune's views, evaluate, export.
    "runtime": {
        "batch_size": number(1, MAX_BATCH, integer=True),
        "engine": auto_or(choice("tensorflow", "onnxruntime")),
    },
    "head": {
        "type": choice("best", "dense", "logistic"),
        "choose_by": choice("val", "folds"),
        "units": number(0, MAX_UNITS, integer=True),
        "dropout": number(0, 1, open_high=True),
    },
    "train": {
        "optimizer": auto_or(choice("sgd", "adam")),
        "loss": choice(*LOSSES),
        "lr": auto_or(number(0, open_low=True)),
        "momentum": number(0, 1, open_high=True),
        "batch_size": number(1, MAX_BATCH, integer=True),
        "epochs": number(1, MAX_EPOCHS, integer=True),
        "patience": number(0, integer=True),
        "seed": number(0, integer=True),
        "distribute": choice("none", "auto", "mirrored", "multiworker"),
        "mixed_precision": boolean,
        "class_weight": choice("balanced", "none"),
        "label_smoothing": number(0, 0.5, open_high=True),
        "pseudo_labels": choice("none", "confident"),
    },
    "finetune": {
        "unfreeze": auto_or(number(0, MAX_BLOCKS, integer=True)),  # blocks; graph.unfreeze: of this network
        "lr": auto_or(number(0, open_low=True)),
        "epochs": auto_or(number(0, MAX_EPOCHS, integer=True)),
        "views": number(0, MAX_VIEWS, integer=True),
        "min_val": number(0, integer=True),
        "schedule": choice("constant", "cosine"),
        "ema": number(0, 1, open_high=True),
        "mix": choice("none", "mixup", "cutmix"),
    },
    "augment": {
        "flip": choice("none", "horizontal", "vertical", "horizontal_and_vertical"),
        "rotation": number(0, 1, open_high=True),
        "zoom": number(0, 1, open_high=True),
        "translation": number(0, 1, open_high=True),
    },
    "unknown": {
        "k": number(1, 1000, integer=True),
        "pass_share": number(0, 1, open_low=True, open_high=True),
    },
    "evaluate": {
        "tta": boolean,
    },
    "export": {
        "formats": names,  # formats.check
        "calibration_images": number(1, MAX_CALIBRATION, integer=True),
    },
}


# Keys that moved: an old params.yaml stops with one line saying where to.
MOVED = {"features.batch_size": "runtime.batch_size", "features.engine": "runtime.engine"}

# One frozen dataclass per section, and one for the whole file.
SECTIONS = {name: make_dataclass(name.title(), list(fields), frozen=True) for name, fields in SCHEMA.items()}
Params = make_dataclass("Params", list(SCHEMA), frozen=True)


def validate(raw):
    """Return the params as a frozen Params, or raise UserError naming the bad key."""
    if not isinstance(raw, dict):
        raise UserError(f"{PARAMS_FILE}: expected sections {', '.join(SCHEMA)}")
    for section, given in raw.items():
        for key in given if isinstance(given, dict) else ():
            if f"{section}.{key}" in MOVED:
                raise UserError(f"{PARAMS_FILE}: {section}.{key} is now {MOVED[f'{section}.{key}']}: rename it")
        if section not in SCHEMA:
            raise UserError(f"{PARAMS_FILE}: unknown section '{section}' (allowed: {', '.join(SCHEMA)})")
    sections = {}
    for section, fields in SCHEMA.items():
        given = raw.get(section)
        if not isinstance(given, dict):
            raise UserError(f"{PARAMS_FILE}: missing section '{section}' (keys: {', '.join(fields)})")
        for key in given:
            if key not in fields:
                raise UserError(
                    f"{PARAMS_FILE}: unknown key '{section}.{key}' (allowed: {', '.join(fields)})"
                )
        for key, check in fields.items():
            if key not in given:
                raise UserError(f"{PARAMS_FILE}: missing key '{section}.{key}'")
            require(section, key, given[key], check)
        sections[section] = SECTIONS[section](**given)
    params = Params(**sections)
    check_together(params)
    return replace(params, model=replace(params.model, task=task(params)))


def require(section, key, value, check):
    """Raise UserError naming `section.key` if check(value) finds a problem."""
    problem = check(value)
    if problem:
        raise UserError(f"{PARAMS_FILE}: {section}.{key} = {value!r} {problem}")


def check_together(p):
    """Rules that involve more than one key."""
    if p.split.val + p.split.test >= 1:
        raise UserError(
            f"{PARAMS_FILE}: split.val + split.test = {p.split.val + p.split.test:g} "
            "must be below 1 to leave images for training"
        )
    if p.data.source == "local":
        if p.data.local_dir is None:
            raise UserError(
                f"{PARAMS_FILE}: data.local_dir is required when data.source is local "
                "(a folder with one sub-folder of images per class)"
            )
        if not Path(p.data.local_dir).is_dir():
            raise UserError(f"{PARAMS_FILE}: data.local_dir = {p.data.local_dir!r} is not a folder")
        output = overlapping_output(p.data.local_dir)
        if output:
            raise UserError(
                f"{PARAMS_FILE}: data.local_dir = {p.data.local_dir!r} overlaps {output}, which the pipeline "
                "deletes and rewrites: move your photos to a folder of their own (e.g. outside the project)"
            )
    if p.data.labels is not None:
        if p.data.source != "local":
            raise UserError(f"{PARAMS_FILE}: data.labels needs data.source local (the photos it lists are in data.local_dir)")
        if not Path(p.data.labels).is_file():
            raise UserError(f"{PARAMS_FILE}: data.labels = {p.data.labels!r} is not a file (a CSV of path,labels)")
    if p.data.unlabelled_dir is not None:
        check_pool(p.data)
    if p.train.pseudo_labels == "confident" and (p.data.unlabelled_dir is None or p.data.labels is not None):
        need = "data.unlabelled_dir (the pool its photos come from)" if p.data.unlabelled_dir is None else \
            "one class per photo, not data.labels"
        raise UserError(f"{PARAMS_FILE}: train.pseudo_labels: confident needs {need}: set it to none")
    if p.model.weights not in ("imagenet", "none") and not Path(p.model.weights).is_file():
        raise UserError(
            f"{PARAMS_FILE}: model.weights = {p.model.weights!r} must be imagenet, none, "
            "or the path of a Keras weights file (.h5 / .weights.h5)"
        )


def task(p):
    """model.task with `auto` resolved: multi_label exactly where data.labels is set
    (the one place the task is decided; every stage reads p.model.task)."""
    if p.model.task == "auto":
        return "multi_label" if p.data.labels else "single_label"
    if (p.model.task == "multi_label") != bool(p.data.labels):
        need = "needs data.labels (a CSV of path,labels)" if p.data.labels is None else \
            "reads its classes from folders, not data.labels"
        raise UserError(f"{PARAMS_FILE}: model.task = {p.model.task} {need}: set model.task to auto")
    return p.model.task


def check_pool(data):
    where = f"{PARAMS_FILE}: data.unlabelled_dir = {data.unlabelled_dir!r}"
    if not Path(data.unlabelled_dir).is_dir():
        raise UserError(f"{where} is not a folder (or set it to null: no unlabelled photos)")
    output = overlapping_output(data.unlabelled_dir)
    if output:
        raise UserError(f"{where} overlaps {output}, which the pipeline deletes and rewrites: "
                        "move the photos to a folder of their own")
    if data.source == "local" and data.local_dir and Path(data.unlabelled_dir).resolve().is_relative_to(
            Path(data.local_dir).resolve()):
        raise UserError(f"{where} lies inside data.local_dir, whose folders are classes: move it out")


def overlapping_output(folder):
    """The pipeline output (dvc.yaml's outs) that `folder` is, holds or lies in, or None."""
    pipeline = Path("dvc.yaml")
    if not pipeline.exists():
        return None
    folder = Path(folder).resolve()
    for stage in yaml.safe_load(pipeline.read_text())["stages"].values():
        for out in stage.get("outs", []):
            name = out if isinstance(out, str) else next(iter(out))
            if folder.is_relative_to(Path(name).resolve()) or Path(name).resolve().is_relative_to(folder):
                return name
    return None


def read(path=PARAMS_FILE):
    """params.yaml as a dict, unchecked."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{path} not found: run from the project root") from None
    except yaml.YAMLError as error:
        raise UserError(f"{path} is not valid YAML: {error}") from None


def load(path=PARAMS_FILE):
    return validate(read(path))

