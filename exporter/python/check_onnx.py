"""Validates ONNX files with onnx.checker (full_check: also type and shape inference).

Usage: check_onnx.py FILE...   — prints one line per file, exits 1 on the first invalid one.
"""
import sys

import onnx


def main(paths):
    for path in paths:
        model = onnx.load(path)
        try:
            onnx.checker.check_model(model, full_check=True)
        except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
            print(f"{path}: invalid: {e}")
            return 1
        ops = sorted({node.op_type for node in model.graph.node})
        print(f"{path}: valid (ir {model.ir_version}, opset {model.opset_import[0].version}, ops {','.join(ops)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
