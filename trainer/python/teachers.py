#!/usr/bin/env python3
"""Run the pretrained emotion teachers on face crops.

stdin: JSON lines {"crop": "/path/to/crop.png"}; stdout: JSON lines
{"facex": [7 probabilities], "fer": [7 probabilities]}, each in that teacher's own label order
(the Rust side maps them onto the canonical labels by name). Preprocessing as each package does:
facex — 200×200 grey copied to 3 channels, /255; fer — 64×64 grey, (x/255 − 0.5)·2."""

import json
import sys
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from PIL import Image


class Teacher:
    def __init__(self, path: Path):
        self.interpreter = Interpreter(model_path=str(path))
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]

    def __call__(self, x: np.ndarray) -> list:
        self.interpreter.set_tensor(self.input["index"], x.astype(np.float32))
        self.interpreter.invoke()
        return [float(p) for p in self.interpreter.get_tensor(self.output["index"])[0]]


def main() -> None:
    models = Path(sys.argv[1])
    facex, fer = Teacher(models / "facex.tflite"), Teacher(models / "fer.tflite")
    for line in sys.stdin:
        if not line.strip():
            continue
        crop = Image.open(json.loads(line)["crop"]).convert("L")
        grey200 = np.asarray(crop.resize((200, 200), Image.BILINEAR), dtype=np.float32) / 255.0
        grey64 = np.asarray(crop.resize((64, 64), Image.BILINEAR), dtype=np.float32)
        out = {
            "facex": facex(np.repeat(grey200[None, :, :, None], 3, axis=3)),
            "fer": fer(((grey64 / 255.0 - 0.5) * 2.0)[None, :, :, None]),
        }
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
