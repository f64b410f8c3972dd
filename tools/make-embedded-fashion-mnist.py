#!/usr/bin/env python3
"""Builds the class-balanced Fashion-MNIST subset embedded in src/McDit.Torch/Data/Embedded.

Usage (from the repository root; Python 3.8+, standard library only):

    apt-get install -y dataset-fashion-mnist
    python3 tools/make-embedded-fashion-mnist.py /usr/share/datasets/fashion-mnist src/McDit.Torch/Data/Embedded

Selection: walking each source file in file order, the first N images of every class are kept
(N = 600 from the training files, N = 100 from the test files); kept images stay in file order.
Output: gzip IDX files in the original format (magic 0x00000803 images, 0x00000801 labels).
gzip is written with mtime 0 and no file name, so the bytes are the same on every run with the same zlib.
"""
import gzip
import hashlib
import os
import struct
import sys

CLASSES = 10
SPLITS = [
    # (source prefix, output prefix, images per class)
    ("train", "fashion-mnist-train-subset", 600),
    ("t10k", "fashion-mnist-heldout-subset", 100),
]


def read_source(folder, name):
    for candidate in (name + ".gz", name):
        path = os.path.join(folder, candidate)
        if os.path.exists(path):
            opener = gzip.open if candidate.endswith(".gz") else open
            with opener(path, "rb") as f:
                return path, f.read()
    sys.exit(f"missing {name}(.gz) in {folder}")


def write_gz(path, data):
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as f:
            f.write(data)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, dst = sys.argv[1], sys.argv[2]
    os.makedirs(dst, exist_ok=True)
    for prefix, out, per_class in SPLITS:
        ipath, images = read_source(src, f"{prefix}-images-idx3-ubyte")
        lpath, labels = read_source(src, f"{prefix}-labels-idx1-ubyte")
        magic, n, rows, cols = struct.unpack(">IIII", images[:16])
        lmagic, ln = struct.unpack(">II", labels[:8])
        assert magic == 0x803 and lmagic == 0x801 and n == ln, (ipath, lpath)
        size = rows * cols
        counts = [0] * CLASSES
        keep = []
        for i in range(n):
            c = labels[8 + i]
            if counts[c] < per_class:
                counts[c] += 1
                keep.append(i)
        assert counts == [per_class] * CLASSES, counts
        out_images = struct.pack(">IIII", 0x803, len(keep), rows, cols) + b"".join(
            images[16 + i * size:16 + (i + 1) * size] for i in keep)
        out_labels = struct.pack(">II", 0x801, len(keep)) + bytes(labels[8 + i] for i in keep)
        for suffix, data in (("images-idx3-ubyte", out_images), ("labels-idx1-ubyte", out_labels)):
            path = os.path.join(dst, f"{out}-{suffix}.gz")
            write_gz(path, data)
            print(f"{path}: {len(data)} bytes raw, {os.path.getsize(path)} gz, "
                  f"sha256(raw) {hashlib.sha256(data).hexdigest()}")
        print(f"  {prefix}: kept {len(keep)} of {n}, last source index {keep[-1]}")


if __name__ == "__main__":
    main()
