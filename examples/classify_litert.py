"""Label a photo with the exported model: `python examples/classify_litert.py photo.jpg`
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
interpreter.allocate_tensors()
image_input, output = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

image = Image.open(sys.argv[1]).convert("RGB").resize((size, size), Image.BILINEAR)
interpreter.set_tensor(image_input["index"], np.asarray(image, dtype=np.uint8)[None])
interpreter.invoke()
scores = interpreter.get_tensor(output["index"])[0]
scale, zero_point = output["quantization"]
probabilities = (scores.astype(np.float32) - zero_point) * scale if scale else scores
calibrated = probabilities ** (1 / info["temperature"])  # temperature scaling
calibrated /= calibrated.sum()
print(labels[calibrated.argmax()], float(calibrated.max()))
