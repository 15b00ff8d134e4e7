"""Label photos with the exported model: `python examples/classify_savedmodel.py photo.jpg [...]`
(from the project folder). Needs nothing from this project; docs/exported-models.md."""

import json
import sys

import numpy as np
import tensorflow as tf
from PIL import Image

folder = "models/export"
info = json.load(open(f"{folder}/model.json"))
size = info["image_size"]
labels = open(f"{folder}/labels.txt").read().splitlines()
serve = tf.saved_model.load(f"{folder}/saved_model").signatures["serving_default"]

for path in sys.argv[1:]:  # one line per photo
    image = Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR)
    pixels = tf.constant(np.asarray(image, dtype=np.uint8)[None])
    outputs = serve(image=pixels)
    probabilities, score = outputs["probabilities"].numpy()[0], float(outputs["unknown_score"].numpy()[0])
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
