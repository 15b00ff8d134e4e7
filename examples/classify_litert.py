"""Label photos with the exported model: `python examples/classify_litert.py photo.jpg [...]`
(from the project folder). Needs nothing from this project; docs/exported-models.md."""

import json
import sys

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from PIL import Image

folder = "models/export"
info = json.load(open(f"{folder}/model.json"))
size = info["image_size"]
labels = open(f"{folder}/labels.txt").read().splitlines()
interpreter = Interpreter(model_path=f"{folder}/model_int8.tflite")  # or model.tflite
run = interpreter.get_signature_runner()  # outputs by name: probabilities, unknown_score


def read(name, values):
    scale, zero_point = run.get_output_details()[name]["quantization"]
    return (values.astype(np.float32) - zero_point) * scale if scale else values


for path in sys.argv[1:]:  # one line per photo
    image = Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR)
    outputs = {name: read(name, values) for name, values in run(image=np.asarray(image, dtype=np.uint8)[None]).items()}
    probabilities, score = outputs["probabilities"][0], float(outputs["unknown_score"][0])
    # Far from every training photo: a photo of none of the classes.
    verdict = "unknown" if score > info["unknown"]["threshold"] else "known"
    if info.get("task") == "multi_label":  # several labels a photo: each label's Platt scaling and threshold
        a, b = np.array(info["platt"]).T
        p = np.clip(probabilities.astype(np.float64), 1e-7, 1 - 1e-7)
        scores = 1 / (1 + np.exp(-(a * np.log(p / (1 - p)) + b)))
        print(*[label for label, s, t in zip(labels, scores, info["thresholds"]) if s >= t], verdict)
    else:
        calibrated = probabilities ** (1 / info["temperature"])  # temperature scaling
        calibrated /= calibrated.sum()
        print(labels[calibrated.argmax()], float(calibrated.max()), verdict)
