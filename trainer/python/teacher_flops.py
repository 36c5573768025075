#!/usr/bin/env python3
"""FLOPs (2 per multiply-add) of the TFLite teachers' convolutions and fully connected layers,
read from their graphs: usage `teacher_flops.py MODELS_DIR`."""

import sys
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter


def flops(path: Path) -> tuple[int, int]:
    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    shape = {t["index"]: t["shape"] for t in it.get_tensor_details()}
    total, params = 0, 0
    for op in it._get_ops_details():
        name, ins, outs = op["op_name"], op["inputs"], op["outputs"]
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            w, out = shape[ins[1]], shape[outs[0]]
            params += int(np.prod(w))
            if name == "CONV_2D":  # w: [out, kh, kw, in]
                total += 2 * int(np.prod(out)) * int(np.prod(w[1:]))
            elif name == "DEPTHWISE_CONV_2D":  # w: [1, kh, kw, out]
                total += 2 * int(np.prod(out)) * int(w[1] * w[2])
            else:  # w: [out, in]
                total += 2 * int(np.prod(out[:-1])) * int(np.prod(w))
    return total, params


for model in ("facex", "fer"):
    f, p = flops(Path(sys.argv[1]) / f"{model}.tflite")
    print(f"{model}: {f / 1e6:.1f} MFLOPs per face, {p} conv/dense weights")
