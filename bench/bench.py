"""Benchmark: where the time and memory go, measured side by side in one run.

    python bench/bench.py                       # sections 1-4 on generated photo-sized JPEGs
    python bench/bench.py --photos DIR          # ... on real photos (class sub-folders)
    KERAS_HOME=... python bench/bench.py --data DIR --sections 5   # accuracy on real photos
    python bench/bench.py --data DIR --sections 6 --backbone mobilenetv2 --weights FILE
                                                # the one-switch run stage by stage; predict per format
    python bench/bench.py --sections 7          # the one-switch MobileNetV2 run on every real set of ../shared

Prints one table per section and appends them, with the date, the command and
the machine, to bench/RESULTS.md. Not part of the test suite.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from tools.scratch import project, set_params

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench/RESULTS.md"


# ---------------------------------------------------------------- set-up


def photo_like_jpegs(folder, count, size=(500, 375), seed=0):
    """Smooth noise with edges: JPEGs that decode like photos of this size."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        cls = ("cat", "dog")[i % 2]
        small = rng.uniform(0, 255, (size[1] // 25, size[0] // 25, 3)).astype("uint8")
        image = Image.fromarray(small).resize(size, Image.BICUBIC)
        (folder / cls).mkdir(parents=True, exist_ok=True)
        image.save(folder / cls / f"{cls}.{i}.jpg", quality=90)
    return folder


def command(cwd, *args, env=None):
    """Run a command; return (seconds, output)."""
    start = time.perf_counter()
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True,
                            env={**os.environ, "DVC_NO_ANALYTICS": "1", **(env or {})})
    seconds = time.perf_counter() - start
    if result.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return seconds, result.stdout + result.stderr


def peak_rss_mib(cwd, *args):
    """Peak resident memory of one child process (it runs alone under this wrapper)."""
    probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
             "print('peak_kib', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    _, output = command(cwd, sys.executable, "-c", probe, *args)
    return int(re.search(r"peak_kib (\d+)", output).group(1)) / 1024


def stage_params(images, backbone="vgg16", size=150, alpha=1.0, **sections):
    params = {"data": {"source": "local", "local_dir": str(images)},
              "model": {"backbone": backbone, "weights": "none", "image_size": size, "alpha": alpha}}
    for section, values in sections.items():
        params.setdefault(section, {}).update(values)
    return params


# ---------------------------------------------------------------- sections


def features_vs_ceiling(images, work, backbone, size, batch, alpha):
    """1. The features stage vs the raw forward pass on the same images, on each engine."""
    from types import SimpleNamespace

    import tensorflow as tf

    from classifier.data import manifest
    from classifier.data.inputs import batches, decode
    from classifier.model import backbones
    from classifier.runtime import engines

    repo = project(work / "s1", stage_params(images, backbone, size, alpha, features={"batch_size": batch}))
    command(repo, "dvc", "repro", "split")
    os.chdir(repo)
    rows = manifest.read()
    paths, labels = rows.path.tolist(), rows.split.map(["train", "val", "test"].index).to_numpy()
    model_params = SimpleNamespace(backbone=backbone, weights="none", image_size=size, alpha=alpha, pooling="avg")
    network = backbones.extractor(model_params)
    # The ceiling: images already decoded and resized in memory.
    tensors = [tf.stack([decode(tf.io.read_file(p), size) for p in paths[i:i + batch]])
               for i in range(0, len(paths), batch)]
    n, table = len(paths), [("images", len(paths))]
    seconds = {}
    for engine in ("tensorflow", "onnxruntime"):
        forward = engines.forward(network, engine, tensors[0])
        forward(tensors[0])  # warm-up: graph tracing, session start-up
        start = time.perf_counter()
        for chunk in tensors:
            forward(chunk)
        ceiling = time.perf_counter() - start
        # The stage's own loop: read, decode, resize, forward, write.
        start = time.perf_counter()
        engines.stream_to_npy(forward, batches(paths, labels, size, batch), n, work / "x.npy", "float32", f"bench {engine}")
        pipeline = time.perf_counter() - start
        set_params(repo, {"runtime": {"engine": engine}})
        seconds[engine], _ = command(repo, sys.executable, "-m", "stages.features")
        seconds[engine, "ceiling"] = ceiling
        table += [
            (f"{engine}: raw forward pass, ms/image (the ceiling)", 1000 * ceiling / n),
            (f"{engine}: features loop end to end, ms/image", 1000 * pipeline / n),
            (f"{engine}: stage throughput / ceiling", ceiling / pipeline),
            (f"{engine}: `python -m stages.features` wall time, s", seconds[engine]),
        ]
    os.chdir(ROOT)
    return table + [
        ("raw forward pass, tensorflow / onnxruntime", seconds["tensorflow", "ceiling"] / seconds["onnxruntime", "ceiling"]),
        ("features stage, tensorflow / onnxruntime", seconds["tensorflow"] / seconds["onnxruntime"]),
    ]


def head_vs_end_to_end(images, work, backbone, size, batch, alpha):
    """2. One epoch of the head on cached features vs frozen backbone + head on images."""
    import keras

    from classifier.data import manifest
    from classifier.data.inputs import batches
    from classifier.files import read_features
    from classifier.model import backbones
    from classifier.model.heads import dense_head
    from classifier.training.finetuning import assemble

    repo = project(work / "s2", stage_params(images, backbone, size, alpha))
    command(repo, "dvc", "repro", "features")
    os.chdir(repo)
    x, y = read_features("train")
    onehot = keras.utils.to_categorical(y, 2)
    head = dense_head(x.shape[1:], 2, "categorical_crossentropy", units=256, dropout=0.5)
    head.compile("adam", "categorical_crossentropy")
    head.fit(x, onehot, batch_size=batch, epochs=1, verbose=0)  # warm-up (tracing)
    start = time.perf_counter()
    head.fit(x, onehot, batch_size=batch, epochs=1, verbose=0)
    cached = time.perf_counter() - start

    from types import SimpleNamespace
    model_params = SimpleNamespace(backbone=backbone, weights="none", image_size=size, alpha=alpha, pooling="avg")
    model = assemble(backbones.extractor(model_params), head)
    model.compile("adam", "categorical_crossentropy")
    paths, labels = manifest.rows(manifest.read(), "train")
    data = batches(paths, keras.utils.to_categorical(labels, 2), size, batch)
    model.fit(data.take(1), epochs=1, verbose=0)  # warm-up (tracing)
    start = time.perf_counter()
    model.fit(data, epochs=1, verbose=0)
    end_to_end = time.perf_counter() - start
    os.chdir(ROOT)
    return [
        ("training images", len(x)),
        ("head epoch on cached features, s", cached),
        ("frozen backbone + head epoch on images, s", end_to_end),
        ("cached features are this many times cheaper", end_to_end / cached),
    ]


def memory(images_small, images_large, work, backbone, size):
    """3. Peak RSS of the features stage at N and 16N images."""
    peaks = []
    for name, folder in (("n", images_small), ("16n", images_large)):
        repo = project(work / f"s3{name}", stage_params(folder, backbone, size))
        command(repo, "dvc", "repro", "split")
        peaks.append(peak_rss_mib(repo, sys.executable, "-m", "stages.features"))
    n = sum(1 for p in Path(images_small).rglob("*.jpg"))
    return [
        ("N images", n),
        ("peak RSS at N, MiB", peaks[0]),
        ("peak RSS at 16N, MiB", peaks[1]),
        ("growth", peaks[1] / peaks[0] - 1),
    ]


def rerun_cost(images, work, backbone, size):
    """4. `dvc exp run -S train.lr=...` after a full `dvc repro`."""
    repo = project(work / "s4", stage_params(images, backbone, size, train={"epochs": 5}, finetune={"epochs": 1}))
    full, _ = command(repo, "dvc", "repro")
    command(repo, "git", "add", "-A")
    command(repo, "git", "commit", "-qm", "baseline")
    rerun, output = command(repo, "dvc", "exp", "run", "-S", "train.lr=0.003")
    return [
        ("full `dvc repro`, s", full),
        ("`dvc exp run -S train.lr=0.003`, s", rerun),
        ("fraction of the full run", rerun / full),
        ("features rerun?", "yes (WRONG)" if "Running stage 'features'" in output else "no"),
    ]


REAL_RUNS = {
    # name: params on top of the defaults; the rest is each backbone's recipe (`auto`).
    "mobilenetv2": {"model": {"backbone": "mobilenetv2"}},
    "mobilenetv2 a=0.5": {"model": {"backbone": "mobilenetv2", "alpha": 0.5}},
    "mobilenetv2 a=0.35": {"model": {"backbone": "mobilenetv2", "alpha": 0.35}},
    "vgg16": {"model": {"backbone": "vgg16"}},
    "resnet50v2": {"model": {"backbone": "resnet50v2"}},
    "inceptionv3": {"model": {"backbone": "inceptionv3"}},
    "cnn (from scratch)": {"model": {"backbone": "cnn", "image_size": 96},
                           "train": {"epochs": 20, "patience": 6, "lr": 0.001}},
}
REAL_COMMON = {
    "split": {"val": 0.15, "test": 0.15},
    "export": {"formats": ["saved_model", "tflite", "tflite_dynamic", "tflite_int8", "onnx"]},
}


def has_weights(params, keras_home):
    from classifier.model.registry import BACKBONES, weights_file

    model = params["model"]
    spec = BACKBONES[model["backbone"]]
    if spec.from_scratch:
        return True
    size = model.get("image_size", spec.recipe["model.image_size"])
    name = weights_file(model["backbone"], size, model.get("alpha", 1.0))
    return (Path(keras_home) / "models" / name).exists()


def decimal(value):
    """None where the audit flagged every test image."""
    return "n/a" if value is None else f"{value:.4f}"


def trust_rows(name, repo):
    """What the audit found (and how long it took, as it says), calibration before and after
    temperature scaling, flip averaging."""
    audit = json.loads((repo / "metrics/audit.json").read_text())
    report = json.loads((repo / "metrics/eval.json").read_text())
    calibration = {model: report[model]["calibration"] for model in ("head", "finetune")}
    return [
        (f"{name}: audit", (
            f"{audit['seconds']:.0f}s after features; {audit['label_issues']} label issues, "
            f"{audit['near_duplicate_pairs']} near-duplicate pairs, leakage {audit['leakage']}, "
            f"{audit['outliers']} outliers, {audit['conflicts']} conflicts; "
            f"test suspect share {audit['test_suspect_share']:.3f}; "
            f"accuracy on unflagged test images: head {decimal(report['head']['accuracy_unflagged'])}, "
            f"fine-tuned {decimal(report['finetune']['accuracy_unflagged'])}")),
        (f"{name}: calibration", "; ".join(
            f"{model} ECE {c['ece']:.4f} -> {c['ece_calibrated']:.4f} (T {c['temperature']:.2f}), "
            f"log loss {report[model]['loss']:.4f} -> {c['loss_calibrated']:.4f}" for model, c in calibration.items())),
        (f"{name}: flip TTA", f"fine-tuned accuracy {report['finetune']['accuracy']:.4f} -> "
                              f"{report['finetune']['tta']['accuracy']:.4f}, loss {report['finetune']['tta']['loss']:.4f}"),
    ]


def export_rows(name, repo, keras_home):
    """Per export format: test accuracy, agreement with Keras, size, latency."""
    seconds, _ = command(repo, "dvc", "repro", "export", env={"KERAS_HOME": keras_home})
    report = json.loads((repo / "metrics/export.json").read_text())
    return [(f"{name}: export {fmt}", f"accuracy {r['accuracy']:.4f}, agreement {r['agreement']:.4f}, "
                                      f"max |diff| {r['max_abs_diff']:.1e}, {r['size_mb']} MB, {r['latency_ms']:.1f} ms/image")
            for fmt, r in report.items()] + [(f"{name}: export stage", f"{seconds:.0f}s")]


def real_photos(data, work, weights, runs, max_per_class, export):
    """5. Test accuracy on real photographs, head-only and fine-tuned; what the
    audit finds; calibration and flip averaging; with `export`, every format."""
    keras_home = os.environ.get("KERAS_HOME", str(Path("~/.keras").expanduser()))
    table = []
    for name in runs:
        params = json.loads(json.dumps(REAL_COMMON))
        for section, values in REAL_RUNS[name].items():
            params.setdefault(section, {}).update(values)
        params["model"]["weights"] = weights
        params["data"] = {"source": "local", "local_dir": str(data), "max_per_class": max_per_class}
        if weights == "imagenet" and not has_weights(params, keras_home):
            table.append((name, "not run: no ImageNet weights in $KERAS_HOME/models"))
            continue
        repo = project(work / f"s5-{len(table)}", params)
        seconds, _ = command(repo, "dvc", "repro", "evaluate", env={"KERAS_HOME": keras_home})
        report = json.loads((repo / "metrics/eval.json").read_text())
        timing = {**json.loads((repo / "metrics/train.json").read_text()),
                  **json.loads((repo / "metrics/finetune.json").read_text())}
        table.append((name, (
            f"test accuracy head {report['head']['accuracy']:.4f}, fine-tuned {report['finetune']['accuracy']:.4f}; "
            f"F1 {report['finetune']['f1']:.4f}; train {timing['head']['seconds']:.0f}s, "
            f"finetune {timing['finetune']['seconds']:.0f}s, pipeline {seconds:.0f}s; "
            f"model {report['finetune']['size_mb']} MB; "
            f"{json.loads((repo / 'metrics/split.json').read_text())['test']} test images"
        )))
        table += trust_rows(name, repo)
        if export:
            table += export_rows(name, repo, keras_home)
    return table


def timed_repro(repo, env):
    """One `dvc repro`, as a user runs it: [(stage, seconds from the start when DVC
    said "Running stage")], and the whole run's seconds. A stage's time includes
    DVC's own work after it (hashing and caching its outputs)."""
    start, starts = time.perf_counter(), []
    with subprocess.Popen(["dvc", "repro"], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env={**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONUNBUFFERED": "1", **env}) as run:
        output = []
        for line in run.stdout:
            output.append(line)
            if match := re.match(r"Running stage '([^']+)'", line):
                starts.append((match.group(1), time.perf_counter() - start))
    if run.returncode:
        raise SystemExit(f"dvc repro failed:\n{''.join(output)[-3000:]}")
    return starts, time.perf_counter() - start


def stage_seconds(data, work, weights, backbone, alpha, predict_images):
    """6. The one-switch run (`-S model.backbone=... -S model.weights=...`, and
    `model.alpha`; the rest defaults) as one `dvc repro`, stage by stage; then
    `predict` on a folder of photos with each format."""
    keras_home = os.environ.get("KERAS_HOME", str(Path("~/.keras").expanduser()))
    env = {"KERAS_HOME": keras_home}
    repo = project(work / "s6", {"data": {"source": "local", "local_dir": str(data)},
                                 "model": {"backbone": backbone, "weights": weights, "alpha": alpha}})
    starts, total = timed_repro(repo, env)
    ends = [*(start for _, start in starts[1:]), total]
    table = [(f"stage {name}, s", end - start) for (name, start), end in zip(starts, ends)]
    report = json.loads((repo / "metrics/eval.json").read_text())
    table += [("whole run (one `dvc repro`), s", total),
              ("test accuracy: head, fine-tuned, flip-averaged",
               f"{report['head']['accuracy']:.4f}, {report['finetune']['accuracy']:.4f}, "
               f"{report['finetune']['tta']['accuracy']:.4f}")]
    photos = work / "predict"
    photos.mkdir()
    for path in sorted(p for p in Path(data).rglob("*") if p.is_file())[:predict_images]:
        shutil.copy(path, photos / f"{path.parent.name}.{path.name}")
    models = {"keras": "models/model.keras", **{
        name: f"models/export/{file}" for name, file in (("saved_model", "saved_model"), ("onnx", "model.onnx"),
                                                         ("tflite", "model.tflite"), ("tflite_int8", "model_int8.tflite"))}}
    for name, model in models.items():
        one, _ = command(repo, sys.executable, "-m", "classifier.cli.predict", "--model", model, str(next(photos.iterdir())))
        every, _ = command(repo, sys.executable, "-m", "classifier.cli.predict", "--model", model, str(photos))
        table.append((f"predict {predict_images} photos, {name}",
                      f"{(predict_images - 1) / (every - one):.1f} images/s after start-up ({one:.1f} s for one photo)"))
    return table


TRANSFER_SETS = ("flowers", "flowers-rare-roses", "intel", "hymenoptera", "dogs-vs-cats", "cifar10-partial")


def rare_roses(flowers, folder):
    """The shared flowers with roses made rare: train/ holds 100 photos of each
    class but 10 roses (val is carved from it), test/ the other 20 of each and 110 roses."""
    for name in sorted(p.name for p in flowers.iterdir()):
        photos = sorted((flowers / name).iterdir())
        cut = 10 if name == "roses" else 100
        for part, chosen in (("train", photos[:cut]), ("test", photos[cut:])):
            (folder / part / name).mkdir(parents=True, exist_ok=True)
            for photo in chosen:
                (folder / part / name / photo.name).symlink_to(photo)
    return folder


def transfer(shared, work, weights, sets):
    """7. The one-switch MobileNetV2 run (`-S model.backbone=mobilenetv2 -S
    model.weights=...`, the rest defaults) on each real photo set: the fine-tuned
    model's test accuracy and balanced accuracy with their 95% intervals."""
    rows = []
    for i, name in enumerate(sets):
        folder = rare_roses(shared / "data/flowers", work / "rare") if name == "flowers-rare-roses" else shared / "data" / name
        repo = project(work / f"s7-{i}", {"data": {"source": "local", "local_dir": str(folder)},
                                          "model": {"backbone": "mobilenetv2", "weights": weights}})
        seconds, _ = command(repo, "dvc", "repro", "evaluate")
        split = json.loads((repo / "metrics/split.json").read_text())
        tuned = json.loads((repo / "metrics/eval.json").read_text())["finetune"]
        kept = json.loads((repo / "metrics/finetune.json").read_text())["finetune"]["kept"]
        accuracy, balanced = tuned["accuracy_ci95"], tuned["balanced_accuracy_ci95"]
        worst = tuned["worst_class"]
        rows.append((name, (
            f"{len(list((repo / 'data/clean/images').iterdir()))} classes, {split['images']} photos "
            f"(train {split['train']}, val {split['val']}, test {split['test']}: {', '.join(f'{k} {v}' for k, v in split['origin'].items())}); "
            f"accuracy {tuned['accuracy']:.3f} [{accuracy['low']:.3f}, {accuracy['high']:.3f}], "
            f"balanced {tuned['balanced_accuracy']:.3f} [{balanced['low']:.3f}, {balanced['high']:.3f}]; "
            f"worst class {worst['name']} (recall {worst['recall']:.2f} of {worst['support']}); "
            f"fine-tuning {'kept' if kept else 'dropped'}; {seconds / 60:.1f} min"
        )))
        print(rows[-1], flush=True)
    return rows


# ---------------------------------------------------------------- report


def machine():
    import tensorflow as tf

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    return f"{os.cpu_count()} cores, {cpu}; GPU: {', '.join(gpus) or 'none'}; TensorFlow {tf.__version__}"


def render(title, rows):
    lines = [f"### {title}", "", "| measure | value |", "|---|---|"]
    for key, value in rows:
        shown = f"{value:.3g}" if isinstance(value, float) else str(value)
        lines.append(f"| {key} | {shown} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", help="class folders of photos for sections 1-4 (default: generated 500x375 JPEGs)")
    parser.add_argument("-n", type=int, default=64, help="images for sections 1-3 (16n for the memory check)")
    parser.add_argument("--backbone", default="vgg16")
    parser.add_argument("--size", type=int, default=150)
    parser.add_argument("--alpha", type=float, default=1.0, help="sections 1, 2 and 6: model.alpha (MobileNetV2's width)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--sections", default="1234", help="which of 1-7 to run")
    parser.add_argument("--data", help="sections 5 and 6: class folders of real photos")
    parser.add_argument("--weights", default="imagenet", help="sections 5 and 6: imagenet (the real test), a weights file path, or none (code-path check)")
    parser.add_argument("--runs", default=",".join(REAL_RUNS), help="section 5: comma-separated names")
    parser.add_argument("--max-per-class", type=int, default=None, help="section 5: cap images per class")
    parser.add_argument("--export", action="store_true", help="section 5: also export every format and check it")
    parser.add_argument("--shared", default=str(ROOT.parent / "shared"), help="section 7: the shared photo sets and weights")
    parser.add_argument("--sets", default=",".join(TRANSFER_SETS), help="section 7: comma-separated names")
    parser.add_argument("--results", default=str(RESULTS), help="the Markdown file to append to")
    parser.add_argument("--keep", action="store_true", help="keep the scratch projects (to look at their plots)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-"))
    small = Path(args.photos) if args.photos else (
        photo_like_jpegs(work / "images", args.n) if set("124") & set(args.sections) else None)
    sections = []
    if "1" in args.sections:
        sections.append(("1. Feature extraction: stage vs raw forward pass",
                         features_vs_ceiling(small, work, args.backbone, args.size, args.batch, args.alpha)))
    if "2" in args.sections:
        sections.append(("2. Training cost per epoch",
                         head_vs_end_to_end(small, work, args.backbone, args.size, args.batch, args.alpha)))
    if "3" in args.sections:
        large = photo_like_jpegs(work / "images16", 16 * args.n, seed=1)
        sections.append(("3. Memory of the features stage",
                         memory(photo_like_jpegs(work / "images1", args.n), large, work, args.backbone, args.size)))
    if "4" in args.sections:
        sections.append(("4. Rerun cost", rerun_cost(small, work, args.backbone, args.size)))
    if "5" in args.sections:
        if not args.data:
            sections.append(("5. Accuracy on real photos", [("status", "not run: give --data DIR of real photos")]))
        else:
            title = "5. Accuracy on real photos" if args.weights == "imagenet" else (
                f"5. Code-path check with weights={args.weights}: NOT photo accuracy")
            runs = args.runs.split(",")
            sections.append((title, real_photos(Path(args.data).resolve(), work, args.weights, runs,
                                                args.max_per_class, args.export)))

    if "6" in args.sections:
        if not args.data:
            sections.append(("6. The one-switch run, stage by stage", [("status", "not run: give --data DIR of real photos")]))
        else:
            sections.append((f"6. The one-switch run, stage by stage: {args.backbone} (alpha {args.alpha}), weights {args.weights}",
                             stage_seconds(Path(args.data).resolve(), work, args.weights, args.backbone, args.alpha, 1000)))

    if "7" in args.sections:
        shared = Path(args.shared).resolve()
        weights = str(shared / "weights/mobilenet_v2_1.0_224_no_top.reconstructed.h5") if args.weights == "imagenet" else args.weights
        sections.append((f"7. Transfer: the one-switch MobileNetV2 run on every real set, weights {Path(weights).name}",
                         transfer(shared, work, weights, args.sets.split(","))))

    label = "generated 500x375 JPEGs" if not args.photos else args.photos
    width = f" (alpha {args.alpha})" if args.alpha != 1.0 else ""
    header = (f"## {datetime.datetime.now():%Y-%m-%d %H:%M}\n\n`python bench/bench.py {' '.join(sys.argv[1:])}`  \n"
              f"{machine()}  \nsections 1-4: {args.backbone}{width} at {args.size}, batch {args.batch}, "
              f"random weights (speed does not depend on them), {label}\n")
    text = header + "\n" + "\n".join(render(title, rows) for title, rows in sections)
    print(text)
    with open(args.results, "a") as out:
        out.write("\n" + text)
    if args.keep:
        print(f"scratch projects kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
