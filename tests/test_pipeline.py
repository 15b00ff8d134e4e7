"""The whole pipeline through the real `dvc repro` on a tiny generated image set."""

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from classifier.cli import predict
from classifier.data.inputs import batches
from classifier.model import backbones
from conftest import PREDICT, ROOT, browser, dvc, environment, in_process, make_hostile, set_params, sh, tool, workspace_copy

# Every test here reads the one session-wide `baseline` project (see conftest);
# `--dist loadfile` keeps them on one worker, which builds it once.


def declared_outputs(project):
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    for spec in stages.values():
        for out in spec.get("outs", []):
            yield next(iter(out)) if isinstance(out, dict) else out


PARSERS = {
    ".json": lambda path: json.loads(path.read_text()),
    ".csv": pd.read_csv,
    ".tsv": lambda path: pd.read_csv(path, sep="\t"),
    ".npy": lambda path: np.load(path, mmap_mode="r"),
    ".png": lambda path: Image.open(path).verify(),
}


def test_every_declared_output_exists_and_parses(baseline):
    for out in declared_outputs(baseline):
        path = baseline / out
        assert path.exists(), out
        files = [file for file in path.rglob("*") if file.is_file()] if path.is_dir() else [path]
        for file in files:
            if file.suffix in PARSERS:
                PARSERS[file.suffix](file)  # raises on a truncated or malformed file
    for png in ("confusion_head", "confusion_finetune", "roc_pr", "training_curves", "mistakes", "explained",
                "reliability", "unknown_scores"):
        assert (baseline / f"plots/{png}.png").stat().st_size > 5000, png
    assert json.loads((baseline / "metrics/label_next.json").read_text())["pool"] == 0  # no data.unlabelled_dir
    assert pd.read_csv(baseline / "reports/label_next.csv").empty
    roc = pd.read_csv(baseline / "plots/roc_finetune.csv")
    assert roc.fpr.is_monotonic_increasing and roc.tpr.iloc[-1] == 1
    for log in ("logs/train", "logs/finetune"):
        epochs = pd.read_csv(baseline / log / "plots/metrics/eval/loss.tsv", sep="\t")
        assert len(epochs) >= 1 and epochs.loss.notna().all()


def test_eval_metrics_are_the_test_predictions(baseline):
    report = json.loads((baseline / "metrics/eval.json").read_text())
    assert set(report) == {"head", "finetune", "recipe"}
    # What ran: the backbone's recipe where the test params say auto (finetune.unfreeze: 1 block of VGG16).
    assert report["recipe"]["finetune.unfreeze"] == 1
    assert json.loads((baseline / "metrics/finetune.json").read_text())["finetune"]["first_trained_layer"] == "block5_conv1"
    table = pd.read_csv(baseline / "plots/test_predictions.csv")
    for name in ("head", "finetune"):
        scores = report[name]
        assert scores["accuracy"] == pytest.approx((table[name] == table.actual).mean())
        assert {c: row["support"] for c, row in scores["per_class"].items()} == table.actual.value_counts().to_dict()
        unflagged = table[~table.path.isin(pd.read_csv(baseline / "reports/audit/flagged.csv").path)]
        assert scores["accuracy_unflagged"] == pytest.approx((unflagged[name] == unflagged.actual).mean())
    # The classes differ by colour: even random-weight features separate them.
    assert report["head"]["accuracy"] >= 0.85


def test_eval_calibration_is_what_the_temperature_does(baseline):
    report = json.loads((baseline / "metrics/eval.json").read_text())
    temperature = json.loads((baseline / "models/model.json").read_text())["temperature"]
    table = pd.read_csv(baseline / "plots/test_predictions.csv")
    # Two classes: p and 1 - p scaled by 1/T in log space, renormalised.
    p = table.finetune_confidence.clip(1e-7, 1 - 1e-7)
    expected = p ** (1 / temperature) / (p ** (1 / temperature) + (1 - p) ** (1 / temperature))
    np.testing.assert_allclose(table.finetune_calibrated, expected, atol=1e-4)
    # ECE recomputed from the same predictions, 15 equal-width bins.
    bins = np.minimum((table.finetune_confidence * 15).astype(int), 14)
    correct = table.finetune == table.actual
    ece = sum(abs(correct[bins == b].mean() - table.finetune_confidence[bins == b].mean()) * (bins == b).mean()
              for b in np.unique(bins))
    assert report["finetune"]["calibration"]["ece"] == pytest.approx(ece, abs=1e-6)
    reliability = pd.read_csv(baseline / "plots/reliability_finetune.csv")
    assert reliability.images.sum() == len(table)


def test_predict_explains_and_averages_flips(baseline, tmp_path):
    table = pd.read_csv(baseline / "plots/test_predictions.csv")
    result = in_process(baseline, PREDICT, "--tta", "--explain", tmp_path / "why", *table.path[:2])
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 2
    for line in lines:
        with Image.open(line["explanation"]) as figure:
            assert figure.format == "PNG" and figure.size[0] > 300
        assert line["label"] in ("cat", "dog")
    refused = in_process(baseline, PREDICT, "--explain", tmp_path, "--model", "models/export/model.onnx",
                         table.path[0], check=False)
    assert refused.returncode == 2 and "--explain needs the Keras model" in refused.stderr


def test_split_is_stratified_and_disjoint(baseline):
    manifest = pd.read_csv(baseline / "data/split/manifest.csv")
    assert list(manifest.columns) == ["path", "label", "split", "group"]
    assert manifest.path.is_unique and len(manifest) == 32 and manifest.group.is_unique  # no near-identical shots
    counts = manifest.groupby(["split", "label"]).size().unstack()
    assert (counts["cat"] == counts["dog"]).all()
    assert counts.loc["train", "cat"] == 8 and counts.loc["test", "cat"] == 4


def test_features_are_aligned_with_the_manifest(baseline):
    manifest = pd.read_csv(baseline / "data/split/manifest.csv")
    for split in ("train", "val", "test"):
        x = np.load(baseline / f"data/features/{split}_x.npy", mmap_mode="r")
        y = np.load(baseline / f"data/features/{split}_y.npy")
        labels = manifest[manifest.split == split].label
        assert x.shape == (len(labels), 512)  # VGG16, average-pooled
        assert list(y) == [["cat", "dog"].index(name) for name in labels]
        assert np.isfinite(x).all()


def test_dvc_plots_show_draws_every_declared_plot(baseline, tmp_path):
    dvc(baseline, "plots", "show", "-o", str(tmp_path / "html"))
    html = (tmp_path / "html/index.html").read_text()
    declared = json.loads(dvc(baseline, "plots", "show", "--json").stdout)["data"]
    titles = ["Confusion matrix, head only", "Confusion matrix, fine-tuned",
              "ROC, test split", "Reliability, test split", "Precision-recall, test split"]
    curves = [f"logs/{stage}/plots/metrics/{split}/{metric}.tsv" for stage in ("train", "finetune")
              for split in ("train", "eval") for metric in ("loss", "accuracy")]
    assert set(declared) == set(titles + curves)
    assert html.count("vegaEmbed(") == len(declared)
    for title in titles:
        assert f'"text": "{title}"' in html


CDN_SCRIPT = re.compile(r'src="(https://cdn\.jsdelivr\.net/npm/([^"]+))"')

# Injected first into DVC's page: records script errors, failed script loads and
# rejected vegaEmbed promises where --dump-dom can read them.
CATCH_ERRORS = """<script>
function report(text) { document.documentElement.dataset.errors = (document.documentElement.dataset.errors || "") + text + "; "; }
addEventListener("error", e => report(e.message || "failed to load " + e.target.src), true);
addEventListener("unhandledrejection", e => report(String(e.reason)));
</script>"""


def with_local_scripts(html, folder):
    """DVC's page loads Vega from a CDN; use the same versions from the npm registry instead."""
    scripts = CDN_SCRIPT.findall(html)
    packed = sh(folder, "npm", "pack", "--silent", *[spec for _, spec in scripts], check=False) \
        if shutil.which("npm") else None
    if not packed or packed.returncode != 0:
        pytest.skip("npm could not fetch Vega: " + (packed.output if packed else "no npm"))
    for (url, spec), tarball in zip(scripts, packed.stdout.split()):
        with tarfile.open(folder / tarball) as archive:
            package = json.load(archive.extractfile("package/package.json"))
            script = folder / f"{spec}.js"  # the file the CDN serves for a bare package name
            script.write_bytes(archive.extractfile("package/" + package["jsdelivr"]).read())
        html = html.replace(url, script.as_uri())
    return html.replace("<head>", "<head>" + CATCH_ERRORS, 1)


def test_dvc_plots_render_in_headless_chromium(baseline, tmp_path):
    chromium = browser()
    dvc(baseline, "plots", "show", "-o", str(tmp_path / "html"))
    page = tmp_path / "html/index.html"
    page.write_text(with_local_scripts(page.read_text(), tmp_path))
    run = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", f"--user-data-dir={tmp_path / 'profile'}",
           "--virtual-time-budget=20000", "--window-size=1400,4000"]

    dom = sh(tmp_path, *run, "--dump-dom", page.as_uri()).stdout
    assert "data-errors" not in dom, re.search(r'data-errors="([^"]*)"', dom).group(1)
    # vegaEmbed draws each chart into a canvas of class "marks" once its spec compiled.
    assert dom.count('class="marks"') == page.read_text().count("vegaEmbed(") == 13

    sh(tmp_path, *run, f"--screenshot={tmp_path / 'page.png'}", page.as_uri())
    pixels = np.asarray(Image.open(tmp_path / "page.png").convert("RGB")).reshape(-1, 3)
    drawn = (pixels < 250).any(axis=1).mean()
    colours = len(np.unique(pixels, axis=0))
    assert drawn > 0.02 and colours > 100, (drawn, colours)


def test_second_repro_runs_nothing_but_scan(baseline):
    result = dvc(baseline, "repro")
    assert re.findall(r"Running stage '(\w+)'", result.output) == ["scan"]  # a second's look at data.local_dir
    assert "Stage 'download' didn't change, skipping" in result.output


def test_predict_matches_evaluate_and_reports_broken_files(baseline, tmp_path):
    table = pd.read_csv(baseline / "plots/test_predictions.csv")
    folder = tmp_path / "new"
    folder.mkdir()
    for path in table.path[:3]:
        (folder / (baseline / path).name).write_bytes((baseline / path).read_bytes())
    (folder / "broken.jpg").write_bytes(b"not an image at all")
    Image.new("RGB", (40, 40), (200, 70, 60)).save(folder / "red.png")

    result = tool(baseline, "predict", str(folder), "--top-k", "2", check=False)
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    by_name = {line["path"].split("/")[-1]: line for line in lines}
    assert len(lines) == 5
    assert by_name["broken.jpg"]["error"] == "not_image"
    assert by_name["red.png"]["label"] in ("cat", "dog")
    top = by_name["red.png"]["top_k"]
    assert [t["label"] for t in top] == [by_name["red.png"]["label"], {"cat": "dog", "dog": "cat"}[top[0]["label"]]]
    assert sum(t["confidence"] for t in top) == pytest.approx(1)

    globbed = in_process(baseline, PREDICT, folder / "*.png")
    assert [json.loads(line)["path"] for line in globbed.stdout.splitlines()] == [str(folder / "red.png")]
    for _, row in table[:3].iterrows():
        line = by_name[row.path.split("/")[-1]]
        assert line["label"] == row.finetune
        assert line["confidence"] == pytest.approx(row.finetune_calibrated, abs=1e-4)


FLOAT_FORMATS = ("saved_model", "tflite", "onnx")  # the other two store int8 weights
FILES = {"saved_model": "saved_model", "tflite": "model.tflite", "tflite_dynamic": "model_dynamic.tflite",
         "tflite_int8": "model_int8.tflite", "onnx": "model.onnx"}


def test_export_report_has_accuracy_and_parity_for_every_format(baseline):
    report = json.loads((baseline / "metrics/export.json").read_text())
    assert set(report) == {"keras", *FILES}
    for name in FLOAT_FORMATS:
        assert report[name]["max_abs_diff"] <= 1e-4, name
    for name, figures in report.items():
        assert 0.5 <= figures["agreement"] <= 1 and figures["size_mb"] > 0 and figures["latency_ms"] > 0, name
        assert 0 <= figures["accuracy"] <= 1
    assert report["keras"]["accuracy"] == json.loads((baseline / "metrics/eval.json").read_text())["finetune"]["accuracy"]
    # 8 test images: one image is 12.5 points (test_formats.py checks int8 on 200).
    assert report["tflite_int8"]["accuracy"] >= report["tflite"]["accuracy"] - 0.13
    # int8 weights: about a quarter of float32.
    for name in ("tflite_int8", "tflite_dynamic"):
        assert report[name]["size_mb"] < 0.35 * report["tflite"]["size_mb"], name


def test_labels_travel_with_the_model(baseline):
    export = baseline / "models/export"
    info = json.loads((export / "model.json").read_text())
    assert (export / "labels.txt").read_text().splitlines() == info["classes"] == ["cat", "dog"]
    assert info["image_size"] == 32 and info["input"]["dtype"] == "uint8"


def test_model_card_reports_what_the_stages_measured(baseline):
    from huggingface_hub import ModelCard

    card = ModelCard.load(baseline / "models/export/README.md")
    scores = json.loads((baseline / "metrics/eval.json").read_text())["finetune"]
    exported = json.loads((baseline / "metrics/export.json").read_text())
    results = {result.metric_name: result.metric_value for result in card.data.eval_results}
    assert results == {"accuracy": round(scores["accuracy"], 4), "balanced accuracy": round(scores["balanced_accuracy"], 4),
                       "macro F1": round(scores["f1"], 4)}
    low, high = scores["accuracy_ci95"]["low"], scores["accuracy_ci95"]["high"]
    assert f"Test accuracy {scores['accuracy']:.3f} [{low:.3f}, {high:.3f}]" in card.text
    assert "Classes, in output order: `cat`, `dog`." in card.text
    assert f"temperature of {scores['calibration']['temperature']:.3f}" in card.text
    assert f"Above {scores['unknown']['threshold']:.4f}" in card.text and f"{scores['unknown']['flagged']:.1%} [" in card.text
    for name, figures in exported.items():  # a row per format: its accuracy and size
        assert re.search(rf"\| {name} +\| +{figures['accuracy']:.3f} \|.*\| +{figures['size_mb']:.3f} \|", card.text), name
    assert "vgg16 (from random weights), trained on" in card.text  # the tests' model.weights: none
    assert f"`finetune.epochs`: {json.loads((baseline / 'metrics/eval.json').read_text())['recipe']['finetune.epochs']}" \
        in card.text


def test_dvc_artifacts_get_downloads_a_registered_version(baseline, tmp_path):
    """The model registry as a user meets it: a clone whose DVC remote holds the outputs,
    a version registered with a Git tag (as `gto register` or DVC Studio writes it)."""
    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", str(baseline), str(clone))
    shutil.copytree(baseline / ".dvc/cache", tmp_path / "storage")  # a local remote: the same layout as a cache
    dvc(clone, "remote", "add", "-d", "storage", str(tmp_path / "storage"))
    sh(clone, "git", "commit", "-qam", "a DVC remote")
    sh(clone, "git", "tag", "-a", "image-classifier@v1.0.0", "-m", "Registering artifact image-classifier version v1.0.0")
    dvc(tmp_path, "artifacts", "get", str(clone), "image-classifier", "-o", "downloaded")
    for file in (baseline / "models/export").rglob("*"):
        if file.is_file():
            assert (tmp_path / "downloaded" / file.relative_to(baseline / "models/export")).read_bytes() == file.read_bytes()


# What follows reads the exported files as a user would: nothing from `stages` or `classifier`.

def contract_pixels(paths, size):
    """The input contract of docs/exported-models.md, computed independently."""
    import tensorflow as tf

    images = [tf.io.decode_jpeg(path.read_bytes(), channels=3, dct_method="INTEGER_ACCURATE") for path in paths]
    return np.stack([tf.saturate_cast(tf.round(tf.image.resize(image, (size, size), antialias=True)), tf.uint8)
                     for image in images])


def run_exported(path, pixels):
    if path.suffix == ".onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path))
        names = [output.name for output in session.get_outputs()]
        return dict(zip(names, session.run(None, {session.get_inputs()[0].name: pixels})))["probabilities"]
    if path.suffix == ".tflite":
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(path))
        image = interpreter.get_input_details()[0]
        output = interpreter.get_signature_runner().get_output_details()["probabilities"]
        interpreter.resize_tensor_input(image["index"], pixels.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(image["index"], pixels)
        interpreter.invoke()
        scale, zero_point = output["quantization"]
        result = interpreter.get_tensor(output["index"])
        return (result.astype("float32") - zero_point) * scale if scale else result
    import tensorflow as tf

    return tf.saved_model.load(str(path)).signatures["serving_default"](image=tf.constant(pixels))["probabilities"].numpy()


@pytest.mark.parametrize("name", sorted(FILES))
def test_exported_models_take_raw_pixels(baseline, name):
    table = pd.read_csv(baseline / "plots/test_predictions.csv")
    pixels = contract_pixels([baseline / path for path in table.path], 32)
    assert pixels.dtype == np.uint8
    probabilities = run_exported(baseline / "models/export" / FILES[name], pixels)
    labels = np.array(["cat", "dog"])[probabilities.argmax(axis=1)]
    if name in FLOAT_FORMATS:
        assert list(labels) == table.finetune.tolist()
        np.testing.assert_allclose(probabilities.max(axis=1), table.finetune_confidence, atol=1e-4)
    else:  # int8 weights (and for tflite_int8, a uint8 output: steps of 1/256)
        assert (labels == table.finetune).mean() >= 0.75
        np.testing.assert_allclose(probabilities.max(axis=1), table.finetune_confidence, atol=0.1)


def test_int8_model_is_integer_in_and_out(baseline):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(baseline / "models/export/model_int8.tflite"))
    image, output = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert image["dtype"] == np.uint8 and image["quantization"] == (1.0, 0)  # the pixels as they are
    assert output["dtype"] == np.uint8


EXAMPLES = {path.stem: path.read_text() for path in (ROOT / "examples").glob("classify_*.py")}
NO_STAGES = ("\nimport sys\nassert not [m for m in sys.modules if m.split('.')[0] in ('stages', 'classifier')], "
             "'imported the project'\n")


def test_the_docs_link_the_three_example_programs():
    assert sorted(EXAMPLES) == ["classify_litert", "classify_onnx", "classify_savedmodel"]
    docs = (ROOT / "docs/exported-models.md").read_text()
    assert all(f"(../examples/{name}.py)" in docs for name in EXAMPLES)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_program_classifies_a_test_photo(baseline, name):
    table = pd.read_csv(baseline / "plots/test_predictions.csv")
    threshold = json.loads((baseline / "models/unknown.json").read_text())["threshold"]
    # The two photos farthest from the unknown threshold: Pillow's resize moves a score by
    # ~1e-6, and the generated photos' scores lie within 5e-4 of each other.
    rows = table.iloc[(table.unknown_score - threshold).abs().argsort()[::-1][:2]]
    lines = sh(baseline, sys.executable, "-c", EXAMPLES[name] + NO_STAGES, *rows.path).stdout.splitlines()
    assert len(lines) == len(rows)  # one line per photo, in order
    for row, line in zip(rows.itertuples(), lines):
        label, confidence, verdict = line.split()
        # Pillow's resize is within one level of training's: labels agree, probabilities nearly.
        assert label == row.finetune
        assert verdict == ("unknown" if row.unknown else "known")
        assert float(confidence) == pytest.approx(row.finetune_calibrated, abs=0.05)


@pytest.mark.parametrize("exported", sorted(FILES.values()))
def test_predict_reads_exported_models(baseline, exported):
    # In this process (no TensorFlow start-up per format); the CLI itself is
    # run as a subprocess by test_predict_matches_evaluate_and_reports_broken_files.
    table = pd.read_csv(baseline / "plots/test_predictions.csv")
    lines = predicted(baseline, baseline / "models/export" / exported, table.path)
    labels = np.array([line["label"] for line in lines])
    confidences = [line["confidence"] for line in lines]
    if exported in (FILES["tflite_int8"], FILES["tflite_dynamic"]):
        assert (labels == table.finetune).mean() >= 0.75
    else:
        assert list(labels) == table.finetune.tolist()
        assert confidences == pytest.approx(table.finetune_calibrated.tolist(), abs=1e-4)


def test_predict_refuses_an_unknown_model_format(baseline):
    result = in_process(baseline, PREDICT, "--model", "models/model.json", "x.jpg", check=False)
    assert result.returncode == 2
    assert "models/model.json: not a model file this tool reads (.keras, .tflite" in result.stderr


def test_predict_without_a_model_says_to_run_repro(tmp_path, baseline):
    result = in_process(baseline, PREDICT, "--model", tmp_path / "none.keras", "x.jpg", check=False)
    assert result.returncode == 2
    assert "run `dvc repro` first" in result.stderr
    assert "Traceback" not in result.stderr


MIRRORED = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from classifier.training import fit as training
from stages import train
assert training.strategy("mirrored").num_replicas_in_sync == 2
train.main()
"""


def test_mirrored_strategy_trains_on_two_cpu_devices(baseline, tmp_path):
    copy = workspace_copy(baseline, tmp_path / "copy")
    set_params(copy, {"train": {"distribute": "mirrored", "epochs": 8}})
    sh(copy, sys.executable, "-c", MIRRORED)
    summary = json.loads((copy / "logs/train/metrics.json").read_text())
    assert summary["eval"]["accuracy"] >= 0.85


def weights(path):
    return backbones.load_model(path).get_weights()


def head_units(project):
    return [layer.units for layer in backbones.load_model(project / "models/head.keras").layers if hasattr(layer, "units")]


def test_train_keeps_the_head_with_the_lower_val_loss(baseline):
    report = json.loads((baseline / "metrics/train.json").read_text())["head"]
    losses = report["loss_calibrated"]
    assert set(losses) == {"dense", "logistic"} and report["type"] == min(losses, key=losses.get)
    assert report["judged_on"] == "val split"
    assert json.loads((baseline / "metrics/eval.json").read_text())["recipe"]["head.type"] == report["type"]
    assert head_units(baseline) == ([256, 2] if report["type"] == "dense" else [2])


def test_choose_by_folds_chooses_the_head_by_cross_validation(baseline, tmp_path):
    project = workspace_copy(baseline, tmp_path / "copy")
    set_params(project, {"head": {"choose_by": "folds"}})
    result = in_process(project, "stages.train")
    report = json.loads((project / "metrics/train.json").read_text())["head"]
    losses = report["loss_calibrated"]
    assert report["judged_on"] == "5-fold cross-validation on train + val" and report["judged_on"] in result.stdout
    assert set(losses) == {"dense", "logistic"} and report["type"] == min(losses, key=losses.get)
    assert losses != json.loads((baseline / "metrics/train.json").read_text())["head"]["loss_calibrated"]
    # Only the head kept is fitted on train: the dense head's epochs are there only if it won.
    assert ("epochs" in report) == (report["type"] == "dense") and ("logistic_C" in report) == (report["type"] == "logistic")
    assert head_units(project) == ([256, 2] if report["type"] == "dense" else [2])


def test_a_logistic_head_alone_leaves_an_empty_training_log(baseline, tmp_path):
    project = Path(shutil.copytree(baseline, tmp_path / "copy", symlinks=True, ignore=shutil.ignore_patterns("export")))
    shutil.rmtree(project / "logs/train")  # as in a project whose first run this is
    set_params(project, {"head": {"type": "logistic"}})
    dvc(project, "repro", "train")  # logs/train is a declared output: it must exist
    assert list((project / "logs/train").iterdir()) == []
    assert json.loads((project / "metrics/train.json").read_text())["head"]["type"] == "logistic"


def test_same_params_give_the_same_head(baseline, tmp_path):
    # (The same for finetune: test_killed_finetune_resumes... ends exactly where the baseline did.)
    copy = workspace_copy(baseline, tmp_path / "copy")
    in_process(copy, "stages.train")
    expected, got = weights(baseline / "models/head.keras"), weights(copy / "models/head.keras")
    assert all(np.array_equal(a, b) for a, b in zip(expected, got, strict=True))


PEAK_RSS = ("import resource, subprocess, sys; run = subprocess.run(sys.argv[1:]); "
            "print('peak_kib', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
            "sys.exit(run.returncode)")


def predict_peak(project, *args):
    """predict's output lines by file name, the result, and its peak memory in MiB."""
    result = sh(project, sys.executable, "-c", PEAK_RSS, sys.executable, "-m", "classifier.cli.predict", *args, check=False)
    lines = {Path(line["path"]).name: line for line in map(json.loads, result.stdout.splitlines())}
    return result, lines, int(re.search(r"peak_kib (\d+)", result.stderr)[1]) / 2**10


def test_predict_survives_a_folder_of_hostile_files(baseline, tmp_path):
    folder = tmp_path / "uploads"
    expected = make_hostile(folder)  # the hostile-input review's files
    good = pd.read_csv(baseline / "plots/test_predictions.csv").path[:3]
    for path in good:
        shutil.copy(baseline / path, folder)
    Image.new("1", (40000, 40000)).save(folder / "bomb.png")  # a few hundred KB, 1.6 billion pixels
    whole = (baseline / good[0]).read_bytes()
    (folder / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("not a picture")
    (tmp_path / "secret.jpg").write_bytes(whole)
    (folder / "link.jpg").symlink_to(tmp_path / "secret.jpg")
    for name in ("a", "b"):  # a glob's ** that followed them would list 2^40 paths
        (folder / name).symlink_to(".")
    with open(folder / "padded_1gb.jpg", "wb") as f:  # sparse: no disk; read whole, half a GB or more of memory
        f.write(whole)
        f.truncate(1_000_000_000)
    assert (folder / "bomb.png").stat().st_size < 1_000_000
    _, _, peak_one = predict_peak(baseline, str(folder / Path(good[0]).name))

    result, lines, peak = predict_peak(baseline, str(folder))
    assert result.returncode == 1, result.output
    assert "Traceback" not in result.stderr
    assert len(lines) == 9 + len(expected)
    assert lines["padded_1gb.jpg"]["error"] == "too_large: more than 100000000 bytes (clean.max_bytes)"
    assert all(lines[Path(path).name]["label"] in ("cat", "dog") for path in good)
    assert lines["bomb.png"]["error"].startswith("too_large: ")
    assert lines["truncated.jpg"]["error"].startswith("corrupt: ")
    assert lines["empty.jpg"]["error"] == "empty"
    assert lines["notes.jpg"]["error"] == "not_image"
    assert lines["link.jpg"]["error"].startswith(f"symlink_outside: leads to {tmp_path / 'secret.jpg'}, outside")
    for name, reason in expected.items():
        if reason is None:
            assert lines[name]["label"] in ("cat", "dog"), lines[name]
        else:
            assert lines[name]["error"].split(":")[0] == reason, lines[name]
    assert base64.b64decode(lines["caf%E9.jpg"]["path_base64"]) == os.fsencode(folder) + b"/caf\xe9.jpg"
    # The padded files are not read whole, the ICO's 10,000 x 10,000 PNG is not decoded
    # (the review measured 1.7 GB and 1.1 GB for such files), nor the 40,000 x 40,000 bomb:
    # 60 MB more than for one photo here (900 MB with the 1 GB file read whole).
    assert peak - peak_one < 150, (peak, peak_one)

    globbed = in_process(baseline, PREDICT, f"{folder}/**/*.png", check=False)
    assert sorted(Path(json.loads(line)["path"]).name for line in globbed.stdout.splitlines()) == [
        "a.png", "bomb.png", "grey16.png"]


def test_predict_keeps_input_order_across_chunks(baseline, tmp_path):
    table = pd.read_csv(baseline / "plots/test_predictions.csv")
    paths = [str(baseline / path) for path in table.path] * 5  # 40 images: more than one chunk of 32
    (tmp_path / "bad.jpg").write_text("not a picture")
    for at in (5, 33):  # one bad file in each chunk
        paths.insert(at, str(tmp_path / "bad.jpg"))
    assert len(paths) > predict.CHUNK
    lines = [json.loads(line) for line in in_process(baseline, PREDICT, *paths, check=False).stdout.splitlines()]
    assert [line["path"] for line in lines] == paths
    assert [i for i, line in enumerate(lines) if "error" in line] == [5, 33]
    assert [line["label"] for line in lines if "label" in line] == table.finetune.tolist() * 5


def test_predict_max_pixels_option(baseline):
    photo = baseline / pd.read_csv(baseline / "plots/test_predictions.csv").path[0]
    result = in_process(baseline, PREDICT, "--max-pixels", "100", photo, check=False)
    assert result.returncode == 1
    assert json.loads(result.stdout)["error"].startswith("too_large: ")


def interrupt_after_epoch(monkeypatch, epoch):
    """Make the next fit stop (as a kill would) once `epoch` epochs are backed up: no
    timing window to miss, unlike polling for the backup from another process."""
    import keras

    saved = keras.callbacks.BackupAndRestore.on_epoch_end

    def on_epoch_end(self, done, logs=None):
        saved(self, done, logs)
        if done + 1 == epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(keras.callbacks.BackupAndRestore, "on_epoch_end", on_epoch_end)


@pytest.mark.parametrize("name, epochs, outputs", [
    ("finetune", 2, ["models/model.keras", "models/model.json"]),
    ("train", 25, ["models/head.keras"]),
])
def test_killed_stage_resumes_and_ends_as_an_uninterrupted_run(baseline, tmp_path, monkeypatch, name, epochs, outputs):
    module = __import__(f"stages.{name}", fromlist=["main"])
    project = Path(shutil.copytree(baseline, tmp_path / "copy", symlinks=True, ignore=shutil.ignore_patterns("export")))
    monkeypatch.chdir(project)
    for output in outputs:  # what DVC deletes before it runs the stage
        (project / output).unlink()
    interrupt_after_epoch(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        module.main()
    assert json.loads((project / f"backup/{name}/training_metadata.json").read_text())["epoch"] == 1

    result = dvc(project, "repro", "--single-item", name)
    assert f"{name}: resuming from the backup in backup/{name}" in result.output
    assert f"Epoch 2/{epochs}" in result.output and f"Epoch 1/{epochs}" not in result.output
    assert not (project / "backup").exists()
    for a, b in zip(weights(project / outputs[0]), weights(baseline / outputs[0]), strict=True):
        np.testing.assert_array_equal(a, b)  # the same model as the uninterrupted run's
    for metric in ("train/loss", "eval/loss"):
        log = f"logs/{name}/plots/metrics/{metric}.tsv"
        resumed, whole = (pd.read_csv(folder / log, sep="\t") for folder in (project, baseline))
        assert resumed.step.tolist() == whole.step.tolist()
        np.testing.assert_array_equal(resumed.iloc[:, -1], whole.iloc[:, -1])


def test_finetuning_that_hurts_is_dropped_by_the_stage(baseline, tmp_path):
    project = workspace_copy(baseline, tmp_path / "copy")
    set_params(project, {"finetune": {"lr": 0.01}})  # 100x the test's: it wrecks the backbone
    in_process(project, "stages.finetune")
    report = json.loads((project / "metrics/finetune.json").read_text())["finetune"]
    assert report["kept"] is False and report["p_hurt"] < 0.05
    in_process(project, "stages.evaluate")  # the "fine-tuned" model is backbone + head as they were
    table = pd.read_csv(project / "plots/test_predictions.csv")
    assert table.finetune.tolist() == table["head"].tolist()
    np.testing.assert_allclose(table.finetune_confidence, table.head_confidence, atol=1e-4)


def test_backup_of_other_params_is_discarded(baseline, tmp_path, monkeypatch):
    from stages import train

    project = workspace_copy(baseline, tmp_path / "copy")
    monkeypatch.chdir(project)
    interrupt_after_epoch(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        train.main()
    monkeypatch.undo()
    monkeypatch.chdir(project)
    set_params(project, {"train": {"epochs": 3}})
    result = in_process(project, "stages.train")
    assert "train: params, code or input data changed since the backup in backup/train; starting over" in result.stdout
    assert "Epoch 1/3" in result.stdout


def test_killed_features_resume_where_they_stopped(baseline, tmp_path, monkeypatch):
    from stages import features

    project = workspace_copy(baseline, tmp_path / "copy")
    set_params(project, {"runtime": {"batch_size": 4}})
    monkeypatch.chdir(project)
    features.main()  # uninterrupted
    expected = {path.name: np.load(path) for path in (project / "data/features").iterdir()}

    saved = features.save_progress

    def killed_after_two_batches(folder, split, rows):
        saved(folder, split, rows)
        if split == "val" and rows == 8:
            raise KeyboardInterrupt

    monkeypatch.setattr(features, "save_progress", killed_after_two_batches)
    with pytest.raises(KeyboardInterrupt):
        features.main()
    assert json.loads((project / "backup/features/val.progress.json").read_text()) == {"rows": 8}
    monkeypatch.setattr(features, "save_progress", saved)
    calls = []
    monkeypatch.setattr(features, "batches", lambda paths, *args: calls.append(len(paths)) or batches(paths, *args))
    features.main()
    assert calls == [4, 0, 0, 8]  # the engine's check batch; train and val done before the kill; the rest of test
    assert not (project / "backup").exists()
    for name, array in expected.items():
        np.testing.assert_array_equal(np.load(project / "data/features" / name), array, err_msg=name)


def test_onnxruntime_engine_gives_tensorflows_features_and_scores(baseline, tmp_path):
    project = workspace_copy(baseline, tmp_path / "copy")
    set_params(project, {"runtime": {"engine": "onnxruntime"}})
    assert "ONNX Runtime: first batch within" in in_process(project, "stages.features").stdout
    assert not (project / "backup").exists()
    for split in ("train", "val", "test"):
        got, expected = (np.load(root / f"data/features/{split}_x.npy") for root in (project, baseline))
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 * np.abs(expected).max(), err_msg=split)

    # evaluate's passes of the fine-tuned model run on ONNX Runtime too.
    assert "ONNX Runtime: first batch within" in in_process(project, "stages.evaluate").stdout
    got, expected = (json.loads((root / "metrics/eval.json").read_text())["finetune"] for root in (project, baseline))
    assert got["accuracy"] == expected["accuracy"] and got["tta"]["accuracy"] == expected["tta"]["accuracy"]
    assert got["loss"] == pytest.approx(expected["loss"], abs=1e-4)


MULTIWORKER = """
import keras, tensorflow as tf
strategy = tf.distribute.MultiWorkerMirroredStrategy()
data = tf.data.Dataset.from_tensor_slices(([[1.0, 2.0]] * 8, [0] * 8)).batch(4)
with strategy.scope():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.compile("sgd", "sparse_categorical_crossentropy")
model.fit(data, epochs=1, verbose=0)
"""


def test_multiworker_is_refused_while_keras_cannot_fit_with_it(baseline, tmp_path):
    # Keras 3 itself fails: fit() of a two-layer model by two workers on 127.0.0.1.
    for _ in range(3):  # a free port can be taken before a worker binds it: then again, on new ones
        outputs = run_workers(MULTIWORKER, tmp_path, free_ports(2))
        if not any("Could not start gRPC server" in output for output in outputs):
            break
    for output in outputs:
        assert "PerReplica'>) to a Tensor" in output, output[-2000:]
    # ... so the pipeline says so in one line instead of a traceback.
    copy = workspace_copy(baseline, tmp_path / "copy")
    set_params(copy, {"train": {"distribute": "multiworker"}})
    result = in_process(copy, "stages.train", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().endswith("the DVC experiment queue to spread experiments over machines")


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:  # all bound at once: distinct ports
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_workers(program, folder, ports):
    """Each worker's output; none is left running, finished or hung."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    workers = [subprocess.Popen([sys.executable, "-c", program], cwd=folder, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=environment() | {
                                    "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})})
               for i in range(len(ports))]
    try:
        return [worker.communicate(timeout=120)[0] for worker in workers]
    finally:
        for worker in workers:
            worker.kill()


def test_outputs_round_trip_through_a_dvc_remote(baseline, tmp_path):
    project = tmp_path / "copy"
    shutil.copytree(baseline, project, symlinks=True)
    dvc(project, "remote", "add", "--local", "-d", "shelf", str(tmp_path / "remote"))
    dvc(project, "push")
    before = (project / "data/features/test_x.npy").read_bytes()
    for folder in (project / "data").iterdir():  # the DVC outputs; data/exclude.csv is Git's
        if folder.is_dir():
            shutil.rmtree(folder)
    shutil.rmtree(project / "models")
    shutil.rmtree(project / ".dvc/cache")
    dvc(project, "pull")
    assert (project / "data/features/test_x.npy").read_bytes() == before
    assert (project / "models/model.keras").exists()
    assert json.loads(dvc(project, "status", "--json").stdout) == {"scan": ["always changed"]}


def test_finetune_with_cutmix_and_ema_trains_on_mixed_views(baseline, tmp_path):
    project = workspace_copy(baseline, tmp_path / "copy")
    set_params(project, {"finetune": {"mix": "cutmix", "ema": 0.5}})
    in_process(project, "stages.finetune")
    log = "logs/finetune/plots/metrics/train/loss.tsv"
    mixed, plain = (pd.read_csv(folder / log, sep="\t")["loss"] for folder in (project, baseline))
    assert (mixed > plain).all()  # mixed labels cannot be fitted as closely as plain ones
    assert json.loads((project / "metrics/finetune.json").read_text())["finetune"]["epochs"] == 2


# The unknown check through the stages (its unit tests: tests/test_unknown.py).

def unlike_the_photos(folder):
    """Images unlike the tests' noisy one-colour photos: a checkerboard, a flat grey."""
    folder.mkdir(exist_ok=True)
    board = (np.indices((64, 64)).sum(axis=0) // 8 % 2 * 255).astype("uint8")
    Image.fromarray(np.stack([board] * 3, axis=-1)).save(folder / "checkerboard.png")
    Image.new("RGB", (64, 64), (128, 128, 128)).save(folder / "grey.png")
    return sorted(folder.iterdir())


def predicted(project, model, paths, *options):
    """predict's lines for `paths`, read with `model`."""
    return [json.loads(line) for line in in_process(project, PREDICT, "--model", model, *options, *paths).stdout.splitlines()]


def test_the_unknown_threshold_lets_pass_share_of_the_val_and_cross_fitted_training_photos_through(
        baseline):
    from classifier.model import unknown
    from classifier.model.backbones import load_model

    check = json.loads((baseline / "models/unknown.json").read_text())
    manifest = pd.read_csv(baseline / "data/split/manifest.csv")
    val = manifest[manifest.split == "val"].path
    lines = predicted(baseline, "models/model.keras", val)
    bank = load_model(baseline / "models/unknown.keras").get_layer("unknown_score").get_weights()[0]
    assert check["val_photos"] == len(val) and check["training_photos"] == len(bank)
    # The scores it rests on, recomputed: the val photos' as predict gives them, the training
    # photos' against the other folds (params.yaml's train.seed).
    scores = np.r_[[line["unknown_score"] for line in lines], unknown.cross_fitted(bank, check["k"], seed=42)]
    assert (scores <= check["threshold"] + 1e-5).mean() >= check["pass_share"]
    assert (scores < check["threshold"] - 1e-5).mean() < check["pass_share"]  # the lowest such score, not a higher one
    assert np.abs(scores - check["threshold"]).min() < 1e-5  # the threshold is one of them
    assert check["val_passed"] == pytest.approx((scores[:len(val)] <= check["threshold"]).mean(), abs=1e-4)


def test_photos_unlike_the_training_photos_are_flagged_alike_by_every_format(baseline, tmp_path):
    strange = unlike_the_photos(tmp_path / "strange")
    table = pd.read_csv(baseline / "plots/test_predictions.csv")
    photos = [*strange, *table.path]
    lines = predicted(baseline, "models/model.keras", photos)
    assert [line["unknown"] for line in lines[:2]] == [True, True]
    assert all(line["label"] in ("cat", "dog") for line in lines[:2])  # nothing lost: the label stays
    assert [line["unknown"] for line in lines[2:]] == table.unknown.tolist()
    assert [line["unknown_score"] for line in lines[2:]] == pytest.approx(table.unknown_score.tolist(), abs=1e-5)
    for exported in ("model.onnx", "model.tflite", "saved_model"):
        got = predicted(baseline, baseline / "models/export" / exported, photos)
        assert [line["unknown"] for line in got] == [line["unknown"] for line in lines], exported
        assert [line["unknown_score"] for line in got] == pytest.approx([line["unknown_score"] for line in lines], abs=1e-4)
    rejected = predicted(baseline, baseline / "models/export/model.onnx", strange[:1], "--reject-unknown")
    assert rejected[0]["label"] is None and rejected[0]["unknown"]


def test_eval_and_export_report_the_check(baseline):
    scores = json.loads((baseline / "metrics/eval.json").read_text())["finetune"]["unknown"]
    table = pd.read_csv(baseline / "plots/test_predictions.csv")
    check = json.loads((baseline / "models/unknown.json").read_text())
    assert scores["flagged"] == (table.unknown_score > check["threshold"]).mean() == table.unknown.mean()
    assert scores["threshold"] == check["threshold"]
    exported = json.loads((baseline / "models/export/model.json").read_text())["unknown"]
    assert exported == {key: check[key] for key in ("method", "k", "threshold", "pass_share")}
    report = json.loads((baseline / "metrics/export.json").read_text())
    for name in ("saved_model", "tflite", "onnx"):
        assert report[name]["unknown_agreement"] == 1.0 and report[name]["unknown_max_abs_diff"] <= 1e-4, name

