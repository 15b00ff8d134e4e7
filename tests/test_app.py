"""The app (`python -m classifier.cli.app`), served from a copy of the baseline
project with every address but 127.0.0.1 blocked, in headless Chromium (Debian's,
driven by Playwright) and through Gradio's own client; and label_next's queue of
that project's unlabelled pool, which the Label view shows."""

import json
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from PIL import Image

from conftest import PREDICT, browser, committed_repro, copy_of, dvc, in_process, make_images, set_params, stage

# The server runs with its sockets guarded: a connection or name lookup for
# anything but this machine is refused and written to the log the tests read.
GUARD = """
import runpy, socket, sys
log = open(sys.argv.pop(1), "a", buffering=1)
LOCAL = ("127.0.0.1", "::1", "localhost")
connect, getaddrinfo = socket.socket.connect, socket.getaddrinfo
def guarded_connect(self, address):
    if isinstance(address, tuple) and address[0] not in LOCAL:
        log.write(f"connect {address[0]}\\n")
        raise OSError("network blocked by the test")
    return connect(self, address)
def guarded_getaddrinfo(host, *args, **kwargs):
    if host not in LOCAL and host is not None:
        log.write(f"lookup {host}\\n")
        raise socket.gaierror("network blocked by the test")
    return getaddrinfo(host, *args, **kwargs)
socket.socket.connect, socket.getaddrinfo = guarded_connect, guarded_getaddrinfo
runpy.run_module("classifier.cli.app", run_name="__main__")
"""


MAX_BYTES = 300_000  # clean.max_bytes in the app's project: the largest upload


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def findings(project):
    """Two label issues and a near-duplicate pair, on real clean images of the project (and no other finding)."""
    manifest = pd.read_csv(project / "data/split/manifest.csv")
    cats, dogs = manifest[manifest.label == "cat"].path.tolist(), manifest[manifest.label == "dog"].path.tolist()
    audit = project / "reports/audit"
    (audit / "label_issues.csv").write_text(
        f"path,split,label,suggestion,score\n{cats[0]},train,cat,dog,0.01\n{dogs[0]},train,dog,cat,0.02\n")
    (audit / "near_duplicates.csv").write_text(
        "path,split,label,duplicate_path,duplicate_split,duplicate_label,similarity\n"
        f"{cats[1]},train,cat,{cats[2]},test,cat,0.99\n")
    (audit / "outliers.csv").write_text("path,split,label,score\n")


def checkerboard(path):
    """A picture unlike every training photo."""
    Image.fromarray(np.stack([(np.indices((64, 64)).sum(axis=0) // 8 % 2 * 255).astype("uint8")] * 3, -1)).save(path)
    return path


def make_pool(folder, images):
    """The unlabelled pool: new photos of both classes, a copy of a training photo,
    a file that is no image and a checkerboard."""
    make_images(folder, per_class=6, seed=7)
    shutil.copy(images / "cat/cat.0.jpg", folder / "copy.jpg")
    (folder / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * 20)
    checkerboard(folder / "board.png")
    return folder


@pytest.fixture(scope="module")
def app(images, pristine, tmp_path_factory):
    """(project, url, server log): the app serving a copy of the baseline project, with
    an unlabelled pool and a smaller upload limit (so `dvc repro` reruns clean, which
    changes no photo, and label_next)."""
    folder = tmp_path_factory.mktemp("app")
    pool = make_pool(folder / "pool", images)
    project = copy_of(pristine, folder / "project")
    set_params(project, {"clean": {"max_bytes": MAX_BYTES}, "data": {"unlabelled_dir": str(pool)}})
    committed_repro(project)
    findings(project)
    log = project.parent / "network.log"
    server, url = serve(project, log, project.parent / "server.err")
    yield project, url, log
    server.terminate()
    server.wait(30)


def serve(project, log, errors):
    """(process, url): the app serving `project` on 127.0.0.1, its sockets guarded
    (their attempts in `log`), once it answers."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", GUARD, str(log), "--port", str(port)], cwd=project,
                              stdout=subprocess.DEVNULL, stderr=errors.open("w"))
    url = f"http://127.0.0.1:{port}/"
    for _ in range(240):
        try:
            if requests.get(url, timeout=5).ok:
                return server, url
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or still starting on a busy machine
            assert server.poll() is None, errors.read_text()[-3000:]
            time.sleep(0.5)
    server.terminate()
    raise AssertionError(f"the app did not answer at {url} in two minutes: {errors.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def page(app):
    """A headless Chromium page on the app, whose host resolver knows no other machine;
    every request it makes is recorded in page.requests."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=browser(), args=["--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"])
        page = chromium.new_page()
        page.requests = []
        page.on("request", lambda request: page.requests.append(request.url))
        page.set_default_timeout(60_000)
        page.goto(app[1])
        yield page
        chromium.close()


def expected(project, photo):
    """The fine-tuned model's label and calibrated confidence for a test photo, as evaluate wrote them."""
    table = pd.read_csv(project / "plots/test_predictions.csv").set_index("path")
    return table.finetune[photo], f"{table.finetune_calibrated[photo]:.1%}"


def test_a_pool_and_an_upload_limit_rerun_only_the_stages_that_read_them(app):
    project, _, _ = app
    log = project.with_suffix(".repro.log").read_text()
    # clean reruns and changes no photo: DVC skips what follows it; evaluate reads neither.
    assert re.findall(r"Running stage '(\w+)'", log) == ["scan", "download", "clean", "pool_features", "label_next"]


def test_nothing_leaves_the_machine(app, page):
    _, url, log = app
    page.get_by_role("tab", name="Model").click()
    page.get_by_text("Test scores").wait_for()  # the card, rendered
    assert page.requests and all(request.startswith(url) for request in page.requests)
    assert not log.exists() or log.read_text() == ""


def upload(page, path):
    page.get_by_role("tab", name="Try").click()
    page.locator("input[type=file]").first.set_input_files(str(path))


def row(page, name):
    """The text of the Labels table's row for file `name`, once it shows."""
    cell = page.get_by_role("gridcell", name=name, exact=True)
    found = page.get_by_role("row").filter(has=cell, visible=True).first
    found.wait_for()
    return found.inner_text()


def test_an_uploaded_photo_gets_its_label_and_a_hostile_one_an_error(app, page, tmp_path):
    project = app[0]
    photo = pd.read_csv(project / "plots/test_predictions.csv").path[0]
    label, confidence = expected(project, photo)
    upload(page, project / photo)
    assert re.search(rf"\b{label}\s+{re.escape(confidence)}", row(page, photo.rsplit("/", 1)[1]))

    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * 20)
    upload(page, bad)
    assert "corrupt" in row(page, "bad.jpg")

    other = pd.read_csv(project / "plots/test_predictions.csv").path.iloc[-1]
    upload(page, project / other)  # the server kept serving
    assert expected(project, other)[0] in row(page, other.rsplit("/", 1)[1])


def shown(page, label):
    """Whether the image box labelled `label` shows a picture."""
    box = page.get_by_test_id("block-label").filter(has_text=label).locator("xpath=..")
    return box.locator("img[src*='/gradio_api/file=']").count() == 1


def test_review_buttons_write_the_decisions(app, page):
    project = app[0]
    page.get_by_role("tab", name="Review").click()
    page.get_by_text("0 of 3 findings reviewed").wait_for()
    photo = page.get_by_label("Photo", exact=True)
    first = photo.input_value()
    assert shown(page, "This photo") and not shown(page, "The other photo")  # a label issue: one photo
    page.get_by_role("button", name="Exclude").click()
    page.get_by_text("1 of 3 findings reviewed").wait_for()
    assert f"{first},label_issue (reviewed)" in (project / "data/exclude.csv").read_text()

    second = photo.input_value()
    assert second != first
    page.get_by_label("Relabel to").click()
    page.get_by_role("option", name="dog").click()
    page.get_by_role("button", name="Relabel").click()
    page.get_by_text("2 of 3 findings reviewed").wait_for()
    assert (project / "data/relabel.csv").read_text().splitlines()[1:] == [f"{second},dog"]

    assert page.get_by_label("Finding").input_value() == "near_duplicate"
    assert shown(page, "This photo") and shown(page, "The other photo")  # the pair, side by side
    page.get_by_role("button", name="Keep").click()
    page.get_by_text("3 of 3 findings reviewed").wait_for()
    decided = pd.read_csv(project / "data/reviewed.csv")
    assert decided.decision.tolist() == ["exclude", "relabel", "keep"]
    assert decided.finding.tolist() == ["label_issue", "label_issue", "near_duplicate"]
    page.reload()  # decided cards stay decided
    page.get_by_role("tab", name="Review").click()
    page.get_by_text("Nothing left to review").wait_for()


def test_the_api_labels_as_predict_does_and_refuses_what_is_not_a_clean_image(app, tmp_path):
    from gradio_client import Client, handle_file

    project, url, _ = app
    client = Client(url, verbose=False)
    photos = pd.read_csv(project / "plots/test_predictions.csv").path[:3].tolist()
    _, table = client.predict([handle_file(str(project / photo)) for photo in photos], api_name="/label")
    rows = pd.DataFrame(table["data"], columns=table["headers"])
    assert rows.label.tolist() == [expected(project, photo)[0] for photo in photos]
    assert rows.confidence.tolist() == [expected(project, photo)[1] for photo in photos]

    flagged = pd.read_csv(project / "plots/test_predictions.csv").set_index("path").unknown
    assert [bool(text) for text in rows.unknown] == [flagged[photo] for photo in photos]

    board = checkerboard(tmp_path / "checkerboard.png")
    _, table = client.predict([handle_file(str(board))], api_name="/label")
    threshold = json.loads((project / "models/unknown.json").read_text())["threshold"]
    assert table["data"][0][table["headers"].index("unknown")].endswith(f"threshold {threshold:.3f})")
    assert table["data"][0][table["headers"].index("label")] in ("cat", "dog")

    before = (project / "data/exclude.csv").read_text()
    shown = client.predict("outlier", "params.yaml", api_name="/exclude")
    assert "Not saved: params.yaml is not a clean image" in shown[0]
    assert (project / "data/exclude.csv").read_text() == before


def test_an_upload_above_clean_max_bytes_is_refused(app, tmp_path):
    from gradio_client import Client, handle_file

    url = app[1]
    big = tmp_path / "big.jpg"
    with big.open("wb") as file:
        file.truncate(MAX_BYTES + 1)
    with pytest.raises(Exception, match="(?i)too large|maximum|413|size"):
        Client(url, verbose=False).predict([handle_file(str(big))], api_name="/label")


def pool_of(project):
    return project.parent / "pool"


def queue_of(project):
    return pd.read_csv(project / "reports/label_next.csv", keep_default_na=False).set_index("path")


def test_label_next_puts_every_pool_photo_in_one_queue_with_predicts_suggestion(app):
    project = app[0]
    pool, queue = pool_of(project), queue_of(project)
    assert sorted(queue.index) == sorted(str(p.relative_to(pool)) for p in pool.rglob("*") if p.is_file())
    assert queue.queue["copy.jpg"] == "duplicate"
    assert "the same picture as data/clean/images/cat/cat.0.jpg (0 of 64" in queue.reason["copy.jpg"]
    assert queue.queue["bad.jpg"] == "rejected"
    assert "label_next: bad.jpg: corrupt" in project.with_suffix(".repro.log").read_text()
    assert queue.queue["board.png"] == "unknown"
    waiting = queue[queue.queue == "next"]
    assert waiting["rank"].astype(int).tolist() == list(range(1, len(waiting) + 1))
    assert len(waiting) + (queue.queue == "unknown").sum() == 13
    lines = in_process(project, PREDICT, pool / "cat", pool / "dog", pool / "board.png").stdout
    for line in map(json.loads, lines.splitlines()):
        row = queue.loc[str(Path(line["path"]).relative_to(pool))]
        assert (row.suggested, float(row.confidence)) == (line["label"], pytest.approx(line["confidence"], abs=1e-3))
        assert float(row.unknown_score) == pytest.approx(line["unknown_score"], abs=1e-4)
        assert (row.queue == "unknown") == line["unknown"]


def test_the_label_view_saves_each_label_at_once(app, page):
    project = app[0]
    suggested = queue_of(project).suggested
    page.get_by_role("tab", name="Label").click()
    page.get_by_text("0 photo(s) labelled").wait_for()
    photo, saved = page.get_by_label("Pool photo"), []
    for count in (1, 2, 3):
        name = photo.input_value()
        label = {1: suggested[name], 2: {"cat": "dog", "dog": "cat"}[suggested[name]], 3: ""}[count]
        if count == 2:  # another class than the suggestion
            page.get_by_role("radio", name=label).check()
        page.get_by_role("button", name="None of these" if count == 3 else "Save label").click()
        page.get_by_text(f"{count} photo(s) labelled").wait_for()
        saved.append((name, label))
    skipped = photo.input_value()
    page.get_by_role("button", name="Skip").click()
    page.get_by_text(f"Skipped {skipped}").wait_for()
    rows = pd.read_csv(project / "data/labelled.csv", keep_default_na=False)
    assert list(zip(rows.path, rows.label))[:3] == saved
    page.reload()  # labelled photos do not come back; the skipped one does (skips are the page's)
    page.get_by_role("tab", name="Label").click()
    page.get_by_text("3 photo(s) labelled").wait_for()
    assert photo.input_value() == skipped


def test_the_label_api_refuses_what_is_not_a_queued_photo_or_a_class(app):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    project, url, _ = app
    client = Client(url, verbose=False)
    before = (project / "data/labelled.csv").read_text()
    for path in ("../project/params.yaml", "bad.jpg", "copy.jpg"):  # outside the pool, rejected, a duplicate
        shown = client.predict(path, "cat", api_name="/save_label")[0]
        assert f"Not saved: {path} is not a photo waiting in reports/label_next.csv" in shown, shown
    with pytest.raises(AppError, match="'zebra'.* is not in the list of choices"):
        client.predict(queue_of(project).query("queue == 'next'").index[-1], "zebra", api_name="/save_label")
    assert (project / "data/labelled.csv").read_text() == before


def test_labelled_pool_photos_join_the_split_as_photos_of_their_class(app):
    from gradio_client import Client

    project, url, _ = app
    waiting = queue_of(project).query("queue == 'next'").index[-1]
    Client(url, verbose=False).predict(waiting, "dog", api_name="/save_label")
    result = dvc(project, "repro", "split")
    assert "download: " in result.output and "labelled pool photo(s) from data/labelled.csv" in result.output
    assert "1 pool photo(s) marked none of the classes in data/labelled.csv: not trained on" in result.output
    manifest = pd.read_csv(project / "data/split/manifest.csv").set_index("path")
    labelled = pd.read_csv(project / "data/labelled.csv", keep_default_na=False)
    assert waiting in set(labelled.path)
    for path, label in zip(labelled.path, labelled.label):
        if label:
            assert manifest.label[f"data/clean/images/{label}/labelled/{path}"] == label
        else:  # none of the classes: in no class
            assert not manifest.index.str.endswith(f"/labelled/{path}").any()


def test_only_new_pool_photos_pass_through_the_model(app):
    project = app[0]
    pool = pool_of(project)
    labelled = set(pd.read_csv(project / "data/labelled.csv").path)  # in data/clean by now: a copy is a duplicate
    queue = queue_of(project).query("queue == 'next'")
    queued = queue[~queue.index.isin(labelled)].iloc[0]
    shutil.move(pool / queued.name, pool / "renamed.jpg")  # its digest is cached
    shutil.copy(pool / "renamed.jpg", pool / "renamed_copy.jpg")  # a copy within the pool: the first one waits
    make_images(pool / "new", per_class=1, classes=("dog",), seed=11)
    result = stage(project, "label_next")
    assert re.search(r"label_next: 17 pool photo\(s\): .* 1 through the model", result.output), result.output
    again = queue_of(project).loc["renamed.jpg"]
    assert (again.suggested, again.confidence, again.unknown_score) == (queued.suggested, queued.confidence,
                                                                        queued.unknown_score)
    copy = queue_of(project).loc["renamed_copy.jpg"]
    assert copy.queue == "duplicate" and "the same picture as pool photo renamed.jpg (0 of 64" in copy.reason


def test_a_new_model_costs_every_pool_photo_and_the_label_view_shows_flagged_ones_last_most_unlike_first(
        app, monkeypatch):
    from classifier.data import review

    project = app[0]
    before = queue_of(project)
    seen = before[before.queue.isin(["next", "unknown"])]
    check = json.loads((project / "models/unknown.json").read_text())
    check["threshold"] = float(seen.unknown_score.astype(float).median())  # half the pool flagged
    (project / "models/unknown.json").write_text(json.dumps(check))  # a new model, as far as the cache knows
    result = stage(project, "label_next")
    assert re.search(rf"label_next: \d+ pool photo\(s\): .* {len(seen)} through the model", result.output), result.output
    queue = queue_of(project)
    flagged = queue[queue.queue == "unknown"]
    assert len(flagged) >= 3 and (flagged.unknown_score.astype(float) > check["threshold"]).all()
    assert flagged.unknown_score.astype(float).is_monotonic_decreasing  # least like the training photos first
    monkeypatch.chdir(project)
    waiting = [row["path"] for row in review.to_label(pool_of(project))[0]]
    labelled = set(pd.read_csv(project / "data/labelled.csv").path)
    by_rank = [queue[(queue.queue == name) & ~queue.index.isin(labelled)].sort_values("rank", key=lambda r: r.astype(int))
               .index.tolist() for name in ("next", "unknown")]
    assert waiting == by_rank[0] + by_rank[1]
