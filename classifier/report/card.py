"""The model card that `export` writes beside the exported model (models/export/README.md):
Hugging Face's format, YAML metadata with `model-index` results (huggingface_hub's
ModelCard), then what the model is, its data, its test scores with their
intervals, its calibration, each exported format, the recipe, and its limits.
`hf upload <repo> models/export` (huggingface_hub's CLI) publishes the folder as it is.
"""

from pathlib import Path

import pandas as pd
from huggingface_hub import EvalResult, ModelCard, ModelCardData

SHOWN_CLASSES = 20  # per-class rows in the card: the worst recalls first


def interval(scores, name):
    low, high = scores[f"{name}_ci95"]["low"], scores[f"{name}_ci95"]["high"]
    return f"{scores[name]:.3f} [{low:.3f}, {high:.3f}]"


def origin(weights):
    """How the backbone started, from model.weights."""
    if weights == "imagenet":
        return "pre-trained on ImageNet"
    return "from random weights" if weights == "none" else f"from the weights in {Path(weights).name}"


# model-index results per task: (metric type, key in eval.json, name).
RESULTS = {
    "single_label": [("accuracy", "accuracy", "accuracy"), ("accuracy", "balanced_accuracy", "balanced accuracy"),
                     ("f1", "f1", "macro F1")],
    "multi_label": [("mean_average_precision", "map_macro", "mAP (macro)"), ("f1", "f1_macro", "macro F1"),
                    ("accuracy", "subset_accuracy", "subset accuracy")],
}


def metadata(name, info, scores, test_images, data_name, formats):
    """Hugging Face's metadata: tags, and the test scores as `model-index` results."""
    def result(metric, key, metric_name):
        return EvalResult(task_type="image-classification", dataset_type="imagefolder", dataset_name=data_name,
                          dataset_split=f"test ({test_images} photos)", metric_type=metric,
                          metric_value=round(scores[key], 4), metric_name=metric_name)

    task = info.get("task", "single_label")
    return ModelCardData(
        model_name=name, library_name="keras", pipeline_tag="image-classification",
        tags=["image-classification", "keras", "dvc", info["backbone"], *formats,
              *(["multi-label-classification"] if task == "multi_label" else [])],
        eval_results=[result(*entry) for entry in RESULTS[task]],
    )


def table(frame):
    return frame.to_markdown(index=False, floatfmt=".3f")


def data_section(split, clean, audit):
    sizes = ", ".join(f"{split[name]} {name} ({split['origin'][name]})" for name in split["origin"])
    return f"""## Data

{clean['total']} photos came in; {clean['kept']} passed `clean` (the others could not be read safely or
were copies: `metrics/clean.json`); {split['excluded']} were excluded and {split['relabelled']} relabelled after
review (`data/exclude.csv`, `data/relabel.csv`). Split: {sizes}; near-identical shots stay on one
side ({split['near_duplicate_groups']} groups). Largest class / smallest in training: {split['imbalance']}.

The audit (cleanlab on cross-validated probabilities of the cached features) found
{audit['label_issues']} likely label issues, {audit['near_duplicate_pairs']} near-duplicate pairs,
{audit['outliers']} outliers and {audit['conflicts']} conflicts; near-duplicates across splits:
val {audit['leakage']['val']}, test {audit['leakage']['test']}.
"""


def scores_section(scores, per_class):
    rows = [("accuracy", interval(scores, "accuracy")),
            ("balanced accuracy", interval(scores, "balanced_accuracy")),
            ("macro F1", f"{scores['f1']:.3f}"), ("log loss", f"{scores['loss']:.3f}")]
    rows += [(name, interval(scores, name)) for name in ("top5_accuracy",) if name in scores]
    if "tta" in scores:
        rows.append(("accuracy, flip-averaged", interval(scores["tta"], "accuracy")))
    worst = scores["worst_class"]
    shown = per_class.head(SHOWN_CLASSES)
    more = f" ({SHOWN_CLASSES} worst of {len(per_class)}; all in `plots/per_class_finetune.csv`)" \
        if len(per_class) > SHOWN_CLASSES else ""
    calibration = scores["calibration"]
    return f"""## Test scores

On the test split, with 95% intervals (Wilson's; balanced accuracy by bootstrap):

{table(pd.DataFrame(rows, columns=["metric", "value"]))}

Worst class: {worst['name']} (recall {worst['recall']:.3f} of {worst['support']}).

### Per class{more}

{table(shown)}

### Calibration

The confidences are divided by a temperature of {calibration['temperature']:.3f}, fitted on
{calibration['val_images']} validation photos: expected calibration error {calibration['ece']:.4f}
before, {calibration['ece_calibrated']:.4f} after.

{unknown_section(scores["unknown"])}"""


def label_sets_section(scores, per_label):
    """The test scores of a model of several labels per photo, per label, and its thresholds."""
    rows = [(name, interval(scores, key)) for key, name in (
        ("map_macro", "mAP (macro)"), ("map_micro", "mAP (micro)"), ("f1_macro", "macro F1"), ("f1_micro", "micro F1"),
        ("subset_accuracy", "subset accuracy (the whole set right)"), ("hamming_loss", "Hamming loss (wrong decisions)"))]
    rows.append(("macro F1 at a global 0.5, uncalibrated", f"{scores['f1_macro_at_half']:.3f}"))
    return f"""## Test scores

On the test split, with 95% bootstrap intervals over photos:

{table(pd.DataFrame(rows, columns=["metric", "value"]))}

### Per label (the lowest F1 first; `plots/per_label_finetune.csv`)

{table(per_label.head(SHOWN_CLASSES))}

### Calibration and thresholds

Each label's output is calibrated by Platt scaling fitted on the validation photos
(model.json: `platt`), and a photo has every label whose calibrated score reaches that label's
threshold (model.json: `thresholds`, half the best F1 the label reaches on the validation photos:
the F1-best threshold of a calibrated score); it may have none.

{unknown_section(scores["unknown"])}"""


def unknown_section(check):
    low, high = check["flagged_ci95"]["low"], check["flagged_ci95"]["high"]
    return f"""### Photos of none of the classes

Every format also returns `unknown_score`: 1 minus the cosine similarity between the photo's
features and those of its {check['k']}th nearest training photo. Above {check['threshold']:.4f}
(model.json: `unknown.threshold`, set so that {check['pass_share']:.0%} of the validation photos and of
the training photos, each against the others, pass) the photo is flagged as unlike the training
photos; it keeps its label. It flagged
{check['flagged']:.1%} [{low:.1%}, {high:.1%}] of the test photos.
What it can do: flag photos far from all training photos (other scenes, other subjects, blank or
broken images). What it cannot: tell a new class that looks like a known one (a held-out flower
among flowers is caught far less often), or know about photos that are unlike the training
ones yet of a known class (other cameras, light), which it flags too.
"""


def formats_section(exported, task):
    accuracy, agreement = ("subset accuracy", "same label set as Keras") if task == "multi_label" else \
        ("test accuracy", "agreement with Keras")
    rows = [{"format": name, accuracy: entry["accuracy"], agreement: entry["agreement"],
             "same unknown verdict": entry["unknown_agreement"], "size (MB)": entry["size_mb"],
             "ms per photo": entry["latency_ms"]}
            for name, entry in exported.items()]
    return f"""## Exported formats

Each takes a photo's uint8 pixels, resized (model.json: `input`), and returns `probabilities`, one per
class (or label) in the order of `labels.txt`, and `unknown_score`; each was run on every test photo:

{table(pd.DataFrame(rows))}
"""


def write(path, *, info, weights, scores, recipe, split, clean, audit, exported, files, per_class, data_name):
    """Write the card to `path`; `exported` is export's report, `files` each format's file name."""
    task = info.get("task", "single_label")
    several = task == "multi_label"
    kind = "labels" if several else "classes"
    name = f"{info['backbone']}-{len(info['classes'])}-{kind}"
    classes = ", ".join(f"`{label}`" for label in info["classes"])
    settings = "\n".join(f"- `{key}`: {value}" for key, value in recipe.items())
    headline = (f"Several labels per photo. Test mAP {interval(scores, 'map_macro')}, macro F1 "
                f"{interval(scores, 'f1_macro')}." if several else f"Test accuracy {interval(scores, 'accuracy')}.")
    body = f"""
# {name}

An image classifier: {info['backbone']} ({origin(weights)}), trained on {split['train']} photos
of {len(info['classes'])} {kind} by a reproducible DVC pipeline (`dvc repro`), at {info['image_size']} x
{info['image_size']} pixels. {headline}

{kind.title()}, in output order: {classes}.

{data_section(split, clean, audit)}
{label_sets_section(scores, per_class) if several else scores_section(scores, per_class)}
{formats_section(exported, task)}
## Recipe

What ran (params.yaml with every `auto` resolved):

{settings}

## Use

```bash
python -m classifier.cli.predict --model models/export/{next(iter(files.values()))} photo.jpg
```

Exported: {", ".join(f"`{file}`" for file in files.values())}; `labels.txt` names the outputs in order.

Intended use: sorting photos like the ones it was trained on ({data_name}) into these classes.
Limitations: the scores above hold for photos drawn like the test split, from the same source;
photos of other classes are still given one of these, flagged `unknown` where they are unlike
every training photo (see above); photos unlike the training ones (other cameras, light,
framing) may score lower. The test split is small where the intervals are wide.
"""
    data = metadata(name, info, scores, split["test"], data_name, sorted({"tflite" if f.startswith("tflite") else f for f in files}))
    ModelCard(f"---\n{data.to_yaml()}\n---\n{body}").save(path)
