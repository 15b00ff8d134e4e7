"""How long `export` takes per format, as Keras' own `model.export` writes each and as
classifier/runtime/formats.py does, in one run on the same model: CPU seconds, and
whether the files are the same (bytes for LiteRT, outputs for SavedModel and ONNX).

    python bench/export_speed.py                       # MobileNetV2 alpha 1.0 at 224 px, random weights
    python bench/export_speed.py --size 32 --alpha 0.35 --repeats 3

The model is what `export` writes: a backbone and a head with the unknown score
(classifier/model/unknown.py); random weights time the same as trained ones.
"""

import argparse
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np


def classifier(size, alpha):
    import keras

    from classifier.model import backbones, unknown
    from classifier.training.finetuning import assemble

    extractor = backbones.extractor(SimpleNamespace(backbone="mobilenetv2", weights="none", image_size=size,
                                                    alpha=alpha, pooling="avg"))
    model = assemble(extractor, keras.layers.Dense(5, activation="softmax", name="classes"))
    features = np.random.default_rng(0).normal(size=(20, model.get_layer("extractor").output_shape[-1]))
    return unknown.with_score(model, unknown.check(features, k=1))


def keras_export(model, name, folder):
    """The file as Keras' own model.export writes it (what formats.py did before)."""
    from classifier.runtime import formats

    path = Path(folder) / formats.FORMATS[name]
    keras_format = {"saved_model": "tf_saved_model", "tflite": "litert", "onnx": "onnx"}[name]
    model.export(str(path), format=keras_format, input_signature=[formats.pixels(model, "uint8")], verbose=False)
    return path


def ours(model, name, folder):
    """formats.export: the float LiteRT file converted from the SavedModel written first."""
    from classifier.runtime import formats

    saved_model = Path(folder) / formats.FORMATS["saved_model"]
    return formats.export(model, name, folder, saved_model=saved_model if name == "tflite" else None)


def cpu_seconds(write, model, name, folder):
    start = time.process_time()
    path = write(model, name, folder)
    return time.process_time() - start, path


def same(name, a, b, model):
    from classifier.runtime import formats

    if name == "tflite":
        return "same bytes" if a.read_bytes() == b.read_bytes() else "DIFFERENT BYTES"
    x = np.random.default_rng(1).integers(0, 256, (4, *model.input_shape[1:]), dtype="uint8")
    left, right = formats.load(a)(x), formats.load(b)(x)
    largest = max(float(np.abs(left[key] - right[key]).max()) for key in left)
    return f"outputs within {largest:.0e}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each; the table keeps the fastest")
    args = parser.parse_args()
    model = classifier(args.size, args.alpha)
    model(np.zeros((1, *model.input_shape[1:]), "uint8"))  # built and called once, as `export` finds it
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name in ("saved_model", "tflite", "onnx"):  # the order `export` writes them in
            times, paths = {"keras": [], "ours": []}, {}
            for run in range(args.repeats):
                for who, write in (("keras", keras_export), ("ours", ours)):
                    folder = Path(work) / who / str(run)
                    folder.mkdir(parents=True, exist_ok=True)
                    seconds, paths[who] = cpu_seconds(write, model, name, folder)
                    times[who].append(seconds)
            keras_s, ours_s = min(times["keras"]), min(times["ours"])
            rows.append((name, keras_s, ours_s, same(name, paths["keras"], paths["ours"], model)))
    print(f"MobileNetV2 alpha {args.alpha} at {args.size} px, CPU seconds, fastest of {args.repeats}:\n")
    print("| format | Keras' model.export | formats.export | ratio | files |\n|---|---|---|---|---|")
    for name, keras_s, ours_s, verdict in rows:
        print(f"| {name} | {keras_s:.1f} | {ours_s:.1f} | {keras_s / ours_s:.2f}x | {verdict} |")
    total_keras, total_ours = sum(r[1] for r in rows), sum(r[2] for r in rows)
    print(f"| all three | {total_keras:.1f} | {total_ours:.1f} | {total_keras / total_ours:.2f}x | |")


if __name__ == "__main__":
    main()
