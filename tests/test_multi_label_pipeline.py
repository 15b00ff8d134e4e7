"""Several labels per photo from `features` to `export` and `predict`: sigmoid
outputs, per-label Platt scaling and thresholds, label-set metrics, the label
sets predict prints. Sixty generated photos whose labels are colour channels
(tools/generated.make_label_sets), every stage's main() in one process."""

import json
import sys

import keras
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn import metrics

from classifier.data import manifest
from classifier.data.inputs import batches
from classifier.model import backbones, tasks
from classifier.report import label_sets
from conftest import PREDICT, in_process, sh, stages_run
from test_pipeline import EXAMPLES, NO_STAGES
from tools.generated import CHANNELS, make_label_sets


POOL = 8


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("multi_trained")
    folder, csv_path = make_label_sets(root)
    pool, _ = make_label_sets(root / "pool", count=POOL, seed=1)  # unlabelled: its labels CSV is not read
    return stages_run(root / "project", folder, {"data": {"labels": str(csv_path), "unlabelled_dir": str(pool)},
                                                 "export": {"formats": ["saved_model", "tflite", "tflite_int8", "onnx"]}})


def read(project, name):
    return json.loads((project / name).read_text())


def split_of(project, split):
    images = pd.read_csv(project / "data/split/manifest.csv", dtype=str, keep_default_na=False)
    return manifest.rows(images, split, "multi_label")


def test_cached_targets_are_the_label_sets_and_no_label_is_all_zeros(project):
    for split in ("train", "val", "test"):
        _, y = split_of(project, split)
        cached = np.load(project / f"data/features/{split}_y.npy")
        np.testing.assert_array_equal(cached, y)
    _, y = split_of(project, "train")
    assert (y.sum(axis=1) == 0).any(), "the test needs a training photo with no label"
    head = backbones.load_model(project / "models/head.keras")
    assert head.output_shape == (None, len(CHANNELS))  # one sigmoid unit per label
    assert head.get_layer("classes").get_config()["activation"] == "sigmoid"


def test_thresholds_are_half_the_best_f1_of_the_val_predictions(project):
    info = read(project, "models/model.json")
    assert info["task"] == "multi_label" and info["classes"] == sorted(CHANNELS)
    paths, y = split_of(project, "val")
    model = backbones.load_model(project / "models/model.keras")
    outputs = model.predict(batches([project / path for path in paths], y, info["image_size"], 16), verbose=0)
    scores = label_sets.calibrated(outputs, info["platt"])
    for label, threshold in enumerate(info["thresholds"]):
        truth, column = y[:, label], scores[:, label]
        assert label_sets.judged(truth), "the test needs labels with enough val photos"
        best = max(metrics.f1_score(truth, column >= t) for t in np.unique(column))
        assert threshold == pytest.approx(best / 2, abs=0.02)  # the val outputs at the cut were float16
    keras.backend.clear_session()


def test_eval_json_is_what_the_predictions_table_gives(project):
    report = read(project, "metrics/eval.json")
    assert report["recipe"]["model.task"] == "multi_label"
    table = pd.read_csv(project / "plots/test_predictions.csv", keep_default_na=False)
    classes = sorted(CHANNELS)
    y = manifest.label_sets(table.actual, classes)
    for name in ("head", "finetune"):
        scores = table[[f"{name}_{label}" for label in classes]].to_numpy()
        said = manifest.label_sets(table[name], classes)
        got = report[name]
        assert got["map_macro"] == pytest.approx(metrics.average_precision_score(y, scores, average="macro"), abs=2e-3)
        assert got["f1_macro"] == pytest.approx(metrics.f1_score(y, said, average="macro", zero_division=0), abs=1e-4)
        assert got["subset_accuracy"] == pytest.approx((said == y).all(axis=1).mean(), abs=1e-4)
        assert got["hamming_loss"] == pytest.approx((said != y).mean(), abs=1e-4)
        assert (said == (scores >= np.array([got["thresholds"][label] for label in classes]) - 1e-6)).all()
        assert got["f1_macro_ci95"]["low"] <= got["f1_macro"] <= got["f1_macro_ci95"]["high"]
        per_label = pd.read_csv(project / f"plots/per_label_{name}.csv")
        assert dict(zip(per_label.label, per_label.support)) == dict(zip(classes, y.sum(axis=0).astype(int)))
        assert per_label.f1.is_monotonic_increasing  # the worst label first
    assert sorted(path.stem for path in (project / "plots/pr_labels_finetune").iterdir()) == classes


def test_export_checks_label_sets_and_keras_agrees_with_evaluate(project):
    report, scores = read(project, "metrics/export.json"), read(project, "metrics/eval.json")
    assert report["keras"]["accuracy"] == pytest.approx(scores["finetune"]["subset_accuracy"], abs=1e-4)
    assert report["tflite"]["agreement"] >= 0.9


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_programs_print_the_label_sets(project, name):
    table = pd.read_csv(project / "plots/test_predictions.csv", keep_default_na=False).head(3)
    lines = sh(project, sys.executable, "-c", EXAMPLES[name] + NO_STAGES, *table.path).stdout.splitlines()
    assert len(lines) == len(table)
    for row, line in zip(table.itertuples(), lines):
        *labels, verdict = line.split()
        assert verdict == ("unknown" if row.unknown else "known") and set(labels) <= set(CHANNELS)
        if name != "classify_litert":  # that one reads the int8 model
            assert " ".join(labels) == row.finetune


def test_predict_prints_every_label_over_its_threshold(project):
    info = read(project, "models/model.json")
    table = pd.read_csv(project / "plots/test_predictions.csv", keep_default_na=False)
    result = in_process(project, PREDICT, *table.path, "--top-k", "2")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["path"] for line in lines] == list(table.path)
    for line, (_, row) in zip(lines, table.iterrows()):
        assert set(line["scores"]) == set(info["classes"]) and "unknown" in line and "unknown_score" in line
        for label, threshold in zip(info["classes"], info["thresholds"]):
            assert line["scores"][label] == pytest.approx(row[f"finetune_{label}"], abs=1e-4)
            assert (label in line["labels"]) == (line["scores"][label] >= threshold)
        assert " ".join(line["labels"]) == row.finetune
        assert [entry["label"] for entry in line["top_k"]] == sorted(line["scores"], key=line["scores"].get)[::-1][:2]


def test_the_apps_try_view_shows_the_label_set_and_every_score_against_its_threshold(project, monkeypatch):
    import re

    from classifier.cli import app

    info = read(project, "models/model.json")
    table = pd.read_csv(project / "plots/test_predictions.csv", keep_default_na=False).head(6)
    monkeypatch.chdir(project)
    labeller = app.Labeller("models/model.keras")
    shown, rows = labeller([str(project / path) for path in table.path])
    assert len(shown) == len(rows) == len(table)
    for (_, label, confidence, scores, _, error), (_, expected) in zip(rows, table.iterrows()):
        assert (label, confidence, error) == (expected.finetune or "none of the labels", "", "")
        said = {}
        for part in scores.split(", "):
            tick, name, score, threshold = re.fullmatch(r"(✓ )?(\w+) ([\d.]+)% \(threshold ([\d.]+)%\)", part).groups()
            said[name] = bool(tick)
            assert float(score) / 100 == pytest.approx(expected[f"finetune_{name}"], abs=6e-4)
            assert float(threshold) / 100 == pytest.approx(info["thresholds"][info["classes"].index(name)], abs=6e-4)
        assert list(said) == sorted(info["classes"], key=lambda name: -expected[f"finetune_{name}"])  # best first
        assert {name for name, tick in said.items() if tick} == set(expected.finetune.split())
    config = json.dumps(app.build("models/model.keras").config, default=str)  # gr.State holds a callback
    assert '"multiselect": true' in config and '"checkboxgroup"' in config  # Relabel and Label take a set


def test_the_review_view_relabels_a_photo_with_a_label_set_that_split_reads(project, monkeypatch):
    from classifier.cli import app
    from classifier.data import splitting

    monkeypatch.chdir(project)
    images = manifest.read()
    photo = images.path[0]
    audit = project / "reports/audit"
    for finding in audit.glob("*.csv"):  # no other finding
        finding.write_text(finding.read_text().splitlines()[0] + "\n")
    (audit / "label_issues.csv").write_text(  # one card, as the audit writes it
        f"path,split,label,suggestion,score\n{photo},train,{images.label[0]},blue green,0.01\n")
    (project / "data/relabel.csv").write_text("path,label\n")
    (project / "data/reviewed.csv").write_text("path,finding,decision\n")
    shown = app.show()
    assert shown[2] == photo and shown[6]["choices"] == sorted(CHANNELS) and shown[6]["value"] == ["blue", "green"]
    refused = app.decide("relabel")("label_issue", photo, ["red", "zebra"])
    assert "Not saved: 'zebra' is not a label (labels: blue, green, red)" in refused[0]
    app.decide("relabel")("label_issue", photo, ["red", "blue"])  # as the multi-select sends it
    assert (project / "data/relabel.csv").read_text().splitlines()[1:] == [f"{photo},blue red"]
    assert splitting.relabelled(images, "multi_label") == {photo: "blue red"}
    assert "**1 of 1 findings reviewed.**" in app.show()[0]


def test_the_pool_is_ranked_by_the_label_nearest_its_threshold(project):
    info = read(project, "models/model.json")
    queue = pd.read_csv(project / "reports/label_next.csv", keep_default_na=False)
    waiting = queue[queue.queue.isin(["next", "unknown"])]
    assert len(queue) == POOL and len(waiting) > 1, queue
    pool = yaml.safe_load((project / "params.yaml").read_text())["data"]["unlabelled_dir"]
    model = backbones.load_model(project / "models/model.keras")
    outputs = model.predict(batches([f"{pool}/{path}" for path in waiting.path], np.zeros(len(waiting)),
                                    info["image_size"], 16), verbose=0)
    task = tasks.named("multi_label")
    scores = task.calibrated(task.probabilities(outputs), info)
    nearest = np.abs(scores - info["thresholds"]).min(axis=1)
    np.testing.assert_allclose(waiting.certainty, nearest, atol=1e-3)
    said = [" ".join(name for name, s, t in zip(info["classes"], row, info["thresholds"]) if s >= t) for row in scores]
    assert list(waiting.suggested) == said


def test_the_label_view_ticks_the_suggested_set_and_download_trains_on_the_chosen_ones(project, tmp_path, monkeypatch):
    from classifier.cli import app
    from classifier.data import labels, pool
    from classifier.errors import UserError
    from conftest import workspace_copy
    from stages import download

    classes = read(project, "models/model.json")["classes"]
    monkeypatch.chdir(workspace_copy(project, tmp_path / "copy"))
    queue = pd.read_csv("reports/label_next.csv", keep_default_na=False).query("queue == 'next'")
    progress, path, _, _, ticked = app.show_next(classes, [], several=True)
    assert path == queue.path.iloc[0] and ticked["value"] == queue.suggested.iloc[0].split()
    assert f"the last run's test mAP {read(project, 'metrics/eval.json')['finetune']['map_macro']:.1%}" in progress
    refused = app.save_label(classes, path, ["red", "zebra"], [])
    assert "Not saved: 'zebra' is not a label (labels: blue, green, red)" in refused[0]
    shown = app.save_label(classes, path, ["red", "blue"], [])  # as the check boxes send it
    assert f"Saved: {path} is blue red." in shown[0] and shown[1] == queue.path.iloc[1]
    app.save_label(classes, shown[1], [], [])  # None of these: none of the labels
    root = app.pool_root()
    assert pool.read_labelled(root) == {path: "blue red", shown[1]: ""}

    download.main()
    sets = labels.read("data/label_sets.csv", ".")
    assert sets[f"data/raw/labelled/{path}"] == ("blue", "red") and sets[f"data/raw/labelled/{shown[1]}"] == ()
    assert len(sets) == 60 + 2  # the labels CSV's photos and the two labelled
    with open("data/labelled.csv", "a") as f:
        f.write(f"{queue.path.iloc[2]},red zebra,\n")
    with pytest.raises(UserError, match="data/labelled.csv, line 4: 'zebra' is not a label of the data set"):
        download.main()


def test_the_weighted_loss_is_balanced_binary_cross_entropy():
    y = np.array([[1, 0], [0, 0], [0, 1], [0, 0]], dtype="float32")
    positive, negative = tasks.balanced_weights(y)
    np.testing.assert_allclose(positive, [4 / 2, 4 / 2])  # n / (2 x photos with the label)
    np.testing.assert_allclose(negative, [4 / 6, 4 / 6])
    train = type("Train", (), {"class_weight": "balanced", "label_smoothing": 0.0})
    loss = tasks.named("multi_label").loss(train, y, 2)
    p = np.array([[0.8, 0.3]], dtype="float32")
    expected = -(2 * np.log(0.8) + (4 / 6) * np.log(1 - 0.3)) / 2
    assert float(loss(np.array([[1.0, 0.0]]), p)[0]) == pytest.approx(expected, rel=1e-5)


def test_a_label_is_said_where_its_calibrated_score_reaches_its_own_threshold():
    info = {"classes": ["a", "b", "c"], "thresholds": [0.3, 0.9, 0.5], "platt": [[2.0, 0.0], [1.0, 0.0], [1.0, 1.0]]}
    task = tasks.named("multi_label")
    raw = np.array([[0.4, 0.85, 0.3]])
    scores = task.calibrated(raw, info)  # a: sigmoid(2 logit 0.4) = 0.31; c: sigmoid(logit 0.3 + 1) = 0.54
    line = task.line(scores[0], info, top_k=0)
    assert line["labels"] == ["a", "c"]
    assert line["scores"]["a"] == pytest.approx(0.4**2 / (0.4**2 + 0.6**2), abs=1e-6)


def test_every_declared_dependency_and_output_exists_so_dvc_repro_runs_through(project):
    """What `dvc repro` needs beyond the stages' own work (the full run through DVC
    is test_multi_label.py's split and tests/test_pipeline.py's for one class a photo)."""
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        for entry in stage.get("deps", []) + stage.get("outs", []):
            path = entry if isinstance(entry, str) else next(iter(entry))
            assert (project / path).exists(), f"{name}: {path}"


def test_the_model_card_reports_map_and_f1_with_intervals_and_the_labels(project):
    from huggingface_hub import ModelCard

    scores = read(project, "metrics/eval.json")["finetune"]
    card = ModelCard.load(project / "models/export/README.md")
    results = {result.metric_name: result.metric_value for result in card.data.eval_results}
    assert results == {"mAP (macro)": round(scores["map_macro"], 4), "macro F1": round(scores["f1_macro"], 4),
                       "subset accuracy": round(scores["subset_accuracy"], 4)}
    assert "multi-label-classification" in card.data.tags
    low, high = scores["f1_macro_ci95"]["low"], scores["f1_macro_ci95"]["high"]
    assert f"macro F1 {scores['f1_macro']:.3f} [{low:.3f}, {high:.3f}]" in card.text
    assert "Labels, in output order: `blue`, `green`, `red`." in card.text
    assert "same label set as Keras" in card.text and "it may have none" in card.text


def test_the_apps_views_take_label_sets_in_a_browser(project, tmp_path):
    """Try, Review and Label in headless Chromium, served from a copy of the project."""
    from playwright.sync_api import sync_playwright

    from conftest import browser, workspace_copy
    from test_app import row, serve, upload

    copy = workspace_copy(project, tmp_path / "copy")
    photo = pd.read_csv(copy / "data/split/manifest.csv", keep_default_na=False).path[0]
    (copy / "reports/audit/label_issues.csv").write_text(f"path,split,label,suggestion,score\n{photo},train,green,blue,0.01\n")
    for other in ("near_duplicates", "outliers", "conflicts"):
        (copy / f"reports/audit/{other}.csv").unlink(missing_ok=True)
    for decisions, header in (("relabel", "path,label"), ("reviewed", "path,finding,decision"), ("labelled", "path,label")):
        (copy / f"data/{decisions}.csv").write_text(header + "\n")  # none from the tests before
    server, url = serve(copy, tmp_path / "network.log", tmp_path / "server.err")
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=browser(), args=["--no-sandbox"])
            page = chromium.new_page()
            page.set_default_timeout(60_000)
            page.goto(url)

            tested = pd.read_csv(copy / "plots/test_predictions.csv", keep_default_na=False).iloc[0]
            upload(page, copy / tested.path)
            shown = row(page, tested.path.rsplit("/", 1)[1])
            assert (tested.finetune or "none of the labels") in shown and "threshold" in shown

            page.get_by_role("tab", name="Review").click()
            page.get_by_text("0 of 1 findings reviewed").wait_for()
            page.get_by_label("Relabel to").click()
            page.get_by_role("option", name="red").click()  # blue, the suggestion, is chosen already
            page.get_by_role("button", name="Relabel").click()
            page.get_by_text("1 of 1 findings reviewed").wait_for()
            assert (copy / "data/relabel.csv").read_text().splitlines()[1:] == [f"{photo},blue red"]

            queue = pd.read_csv(copy / "reports/label_next.csv", keep_default_na=False).query("queue == 'next'")
            page.get_by_role("tab", name="Label").click()
            page.get_by_text("0 photo(s) labelled").wait_for()
            for skipped in queue.path[:list(queue.suggested.astype(bool)).index(True)]:  # to a suggestion with labels
                assert page.get_by_label("Pool photo").input_value() == skipped
                page.get_by_role("button", name="Skip").click()
                page.get_by_text(f"Skipped {skipped}").wait_for()
            first = page.get_by_label("Pool photo").input_value()
            suggested = set(queue.set_index("path").suggested[first].split())
            assert suggested
            assert {name for name in CHANNELS if page.get_by_role("checkbox", name=name).is_checked()} == suggested
            page.get_by_role("checkbox", name="green").click()  # a set other than the suggestion
            page.get_by_role("button", name="Save label").click()
            page.get_by_text("1 photo(s) labelled").wait_for()
            labelled = pd.read_csv(copy / "data/labelled.csv", keep_default_na=False)
            assert list(zip(labelled.path, labelled.label)) == [(first, " ".join(sorted(suggested ^ {"green"})))]
            chromium.close()
    finally:
        server.terminate()
        server.wait(30)
    assert not (tmp_path / "network.log").exists() or (tmp_path / "network.log").read_text() == ""
