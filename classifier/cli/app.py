"""A local web app (Gradio): try the model, review the audit's findings, label the pool, read the model card.

    python -m classifier.cli.app [--host 127.0.0.1] [--port 7860] [--model models/model.keras]

- Try: drop or pick photos; each gets its top classes with calibrated confidence
  (with several labels per photo: the labels said, and every label's score
  against its threshold) ("none of the classes" where the unknown check flags
  it) and, with the Keras model, its Grad-CAM overlay. Uploads go through predict's
  checks (a hostile file is an error row; the server keeps serving), and no
  upload may be larger than clean.max_bytes.
- Review: the audit's findings as cards; Exclude, Relabel to ... and Keep are
  written at once to data/exclude.csv, data/relabel.csv and data/reviewed.csv
  (classifier/data/review.py); `dvc exp run` then shows their effect.
- Label: the next photos of label_next's queue (the unlabelled pool, ranked),
  the model's suggestion preselected (none for a photo the unknown check
  flags; with several labels per photo, check boxes, the suggested set ticked);
  Save label writes it at once to data/labelled.csv, None of these records the
  photo as none of the classes (not trained on: classifier/data/pool.py; with
  several labels, none of the labels, trained on as such), Skip moves on;
  `dvc exp run` then trains on them.
- Model: models/export/README.md, the model card that `export` writes.

Offline: bound to 127.0.0.1, no usage analytics, the theme's fonts served by
the app itself, no server-side rendering (tests/test_app.py loads the page with
every other address blocked).
"""

import argparse
import os
from functools import partial

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio reads it: no calls home

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from classifier.cli import predict  # noqa: E402
from classifier.data import pool, review  # noqa: E402
from classifier.errors import UserError, run  # noqa: E402
from classifier.files import read_json  # noqa: E402
from classifier.paths import EVAL_REPORT, EXPORT, LABELLED, MODEL  # noqa: E402
from classifier.report import figures, gradcam  # noqa: E402

TOP = 3  # classes shown per photo (with several labels per photo: every label, against its threshold)
COLUMNS = ["photo", "label", "confidence", "scores", "unknown", "error"]


class Labeller:
    """Photos -> (overlays with captions, one table row each), as `predict` labels them."""

    def __init__(self, model_path):
        # keras_model: for a .keras file, which Grad-CAM can run on
        self.model, self.info, self.keras_model = predict.load_predictor(model_path)
        self.task = predict.task_of(self.info)
        self.limits = predict.limits()

    def label(self, path):
        """(overlay or None, table row) for one file."""
        name = os.path.basename(path)
        line, pixels = predict.prepare((path, None), self.info["image_size"], *self.limits)
        if pixels is None:
            return None, [name, "", "", "", "", line["error"]]
        scores, unknown = predict.classify(self.model, self.info, pixels[None], flip=False)
        check = predict.verdict(self.info, unknown[0])
        label, confidence, top = self.task.readout(self.task.line(scores[0], self.info, TOP), self.info)
        flag = ""
        if check["unknown"]:  # the label stays beside it: nothing is lost
            flag = (f"none of the classes (score {check['unknown_score']:.3f}, "
                    f"threshold {self.info['unknown']['threshold']:.3f})")
        image = pixels
        if self.keras_model is not None:
            image = figures.blend(pixels, gradcam.heatmaps(self.keras_model, pixels[None])[0][0])
        caption = f"{label} {confidence}".strip() + (f"; {flag}" if flag else "")
        return (image, caption), [name, label, confidence, top, flag, ""]

    def __call__(self, files):
        labelled = [self.label(file) for file in files or []]
        return [shown for shown, _ in labelled if shown], [row for _, row in labelled]


def photo(path):
    """A finding's photo as pixels, or None (its file may be gone since the audit)."""
    try:
        with Image.open(path) as image:
            image.thumbnail((512, 512))
            return np.asarray(image.convert("RGB"))
    except (OSError, ValueError):
        return None


def show(message=""):
    """What the Review view shows for the first card not yet decided (with several labels
    per photo, the suggestion is a label set: every label of it chosen)."""
    waiting, total = review.queue()
    progress = f"**{total - len(waiting)} of {total} findings reviewed.** {message}"
    if not waiting:
        return progress, "", "", "Nothing left to review.", None, None, gr.update(choices=[], value=None)
    card = waiting[0]
    about = (f"**{card['finding'].replace('_', ' ')}**: `{card['path']}`, labelled **{card['label']}**"
             f"{', ' + card['split'] if card['split'] else ''}. {card['detail']}.")
    other = photo(card["other"]) if card["other"] else None
    suggestion = (card["suggestion"].split() if review.several() else card["suggestion"]) or None
    return (progress, card["finding"], card["path"], about, photo(card["path"]), other,
            gr.update(choices=review.classes(), value=suggestion))


def decide(action):
    """A Review button's handler: record the decision, then show the next card."""

    def handler(finding, path, label=None):
        if not path:
            return show("Nothing to decide.")
        try:
            if action == "exclude":
                review.exclude(path, finding, f"{finding} (reviewed)")
            elif action == "relabel":  # a label set comes as a list
                review.relabel(path, finding, " ".join(sorted(label or [])) if isinstance(label, list) else label)
            else:
                review.keep(path, finding)
        except UserError as error:
            return show(f"Not saved: {error}")
        return show(f"Saved: {action} {path}.")

    return handler


def pool_root():
    from classifier import params

    return params.load().data.unlabelled_dir


def last_score():
    """The last run's test accuracy, or with several labels per photo, its mAP."""
    if not EVAL_REPORT.exists():
        return "no run evaluated yet"
    scores = read_json(EVAL_REPORT)["finetune"]
    if "accuracy" in scores:
        return f"the last run's test accuracy {scores['accuracy']:.1%}"
    return f"the last run's test mAP {scores['map_macro']:.1%}"


def show_next(classes, skipped, message="", several=False):
    """What the Label view shows for the first photo of the queue neither labelled nor
    skipped; `classes`: the model's (model.json), which the queue suggests from (with
    `several` labels per photo, the suggested label set is ticked)."""
    root = pool_root()
    waiting, labelled = review.to_label(root)
    waiting = [row for row in waiting if row["path"] not in skipped]
    progress = (f"**{labelled} photo(s) labelled** ({LABELLED}), {len(waiting)} waiting; {last_score()}. "
                f"`dvc exp run` trains on the new labels. {message}")
    if not waiting:
        return progress, "", "Nothing waiting: `dvc repro label_next` ranks the pool.", None, gr.update(value=None)
    row = waiting[0]
    suggested = row["suggested"] if row["queue"] == "next" else ""
    guess = [name for name in suggested.split() if name in classes] if several else (
        suggested if suggested in classes else None)
    return (progress, row["path"], f"{row['reason']}.", photo(os.path.join(root, pool.located(root, row["path"]))),
            gr.update(value=guess))


def save_label(classes, path, label, skipped):
    """`label`: a class, pool.NONE, or with several labels per photo a list of labels."""
    several = isinstance(label, list)
    if not path:
        return show_next(classes, skipped, "Nothing to save.", several)
    try:
        review.label_photo(pool_root(), path, label, classes)
    except UserError as error:
        return show_next(classes, skipped, f"Not saved: {error}", several)
    said = " ".join(sorted(label)) if several else label
    nothing = "none of the labels" if several else "none of the classes"
    return show_next(classes, skipped, f"Saved: {path} is {said or nothing}.", several)


def skip(classes, path, skipped, several=False):
    skipped = [*skipped, path]
    return skipped, *show_next(classes, skipped, f"Skipped {path}.", several)


def model_card():
    card = EXPORT / "README.md"
    if not card.exists():
        return f"No model card yet: `dvc repro` writes it to {card}."
    from huggingface_hub import ModelCard

    return ModelCard.load(card).text


def build(model_path=MODEL):
    """The app's four views, as Gradio Blocks."""
    labeller = Labeller(model_path)
    with gr.Blocks(title="Image classifier", analytics_enabled=False) as app:
        with gr.Tab("Try"):
            files = gr.File(label="Photos", file_count="multiple", file_types=["image"])
            run_button = gr.Button("Label them", variant="primary")
            gallery = gr.Gallery(label="Where the model looked (Grad-CAM)", columns=4)
            table = gr.Dataframe(headers=COLUMNS, label="Labels", interactive=False)
            run_button.click(labeller, files, [gallery, table], api_name="label")
            files.upload(labeller, files, [gallery, table], api_name=False)
        several = labeller.task.name == "multi_label"
        review_view(app, several)
        label_view(app, labeller.info["classes"], several)
        with gr.Tab("Model"):
            gr.Markdown(model_card())
    return app


def review_view(app, several):
    """The audit's cards; with several labels per photo, Relabel takes a label set."""
    with gr.Tab("Review"):
        progress = gr.Markdown()
        with gr.Row():
            finding = gr.Textbox(label="Finding", interactive=False)
            path = gr.Textbox(label="Photo", interactive=False)
        about = gr.Markdown()
        with gr.Row():
            image = gr.Image(label="This photo", interactive=False)
            other = gr.Image(label="The other photo", interactive=False)
        with gr.Row():
            exclude = gr.Button("Exclude", variant="stop")
            label = gr.Dropdown(label="Relabel to", choices=[], allow_custom_value=False, multiselect=several)
            relabel = gr.Button("Relabel")
            keep = gr.Button("Keep")
        shown = [progress, finding, path, about, image, other, label]
        exclude.click(decide("exclude"), [finding, path], shown, api_name="exclude")
        relabel.click(decide("relabel"), [finding, path, label], shown, api_name="relabel")
        keep.click(decide("keep"), [finding, path], shown, api_name="keep")
        app.load(show, None, shown, api_name=False)


def label_view(app, classes, several):
    """The pool's queue, photo by photo: a class to pick, or with several labels per photo, check boxes."""
    with gr.Tab("Label"):
        skipped = gr.State([])  # this page's skips: a reload starts them again
        progress = gr.Markdown()
        path = gr.Textbox(label="Pool photo", interactive=False)
        reason = gr.Markdown()
        image = gr.Image(label="Photo to label", interactive=False)
        with gr.Row():
            label = (gr.CheckboxGroup(label="Labels", choices=classes) if several else
                     gr.Radio(label="Class", choices=classes))
            save = gr.Button("Save label", variant="primary")
            nothing = gr.Button("None of these")
            skip_button = gr.Button("Skip")
        shown = [progress, path, reason, image, label]
        save.click(partial(save_label, classes), [path, label, skipped], shown, api_name="save_label")
        none = [] if several else pool.NONE  # with several labels: none of the labels, trained on as such
        nothing.click(lambda path, skipped: save_label(classes, path, none, skipped), [path, skipped], shown,
                      api_name="none_of_these")
        skip_button.click(partial(skip, classes, several=several), [path, skipped], [skipped, *shown], api_name="skip")
        app.load(partial(show_next, classes, several=several), skipped, shown, api_name=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s: this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port (default %(default)s)")
    parser.add_argument("--model", default=str(MODEL), help="the model (default %(default)s; Grad-CAM needs a .keras file)")
    args = parser.parse_args()
    launch(build(args.model), args.host, args.port)


def launch(app, host, port, **options):
    """Serve `app`; uploads are bounded by clean.max_bytes, as `predict` reads files."""
    max_bytes = predict.limits()[2]
    return app.launch(server_name=host, server_port=port, max_file_size=max_bytes, ssr_mode=False,
                      show_error=True, **options)


if __name__ == "__main__":
    run(main)
