"""Label photos with the exported model: `python examples/classify_onnx.py photo.jpg [...]`
(from the project folder). Needs nothing from this project; docs/exported-models.md."""

import json
import sys

import numpy as np
import onnxruntime
from PIL import Image

folder = "models/export"
info = json.load(open(f"{folder}/model.json"))
size = info["image_size"]
labels = open(f"{folder}/labels.txt").read().splitlines()
session = onnxruntime.InferenceSession(f"{folder}/model.onnx")

for path in sys.argv[1:]:  # one line per photo
    image = Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR)
    pixels = np.asarray(image, dtype=np.uint8)[None]  # [1, size, size, 3]
    names = [output.name for output in session.get_outputs()]
    outputs = dict(zip(names, session.run(None, {session.get_inputs()[0].name: pixels})))
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
