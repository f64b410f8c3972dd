#!/usr/bin/env python3
"""Patch-grid score of images: how much sharper the edges on a patch grid are than the edges elsewhere.

For a patch size p it compares the mean absolute difference of neighbouring pixels across the patch boundaries
(columns/rows k·p−1 | k·p) with that between all other neighbours. Real images score about 1.0; samples whose
patch grid shows score well above it. Pure Python (no numpy): reads 8-bit PNGs (grey, RGB, RGBA; no interlace)
and gzipped IDX image files.

  python3 tools/patch_grid.py --patch 4 DIR_OF_PNGS ...
  python3 tools/patch_grid.py --patch 4 src/McDit.Torch/Data/Embedded/fashion-mnist-heldout-subset-images-idx3-ubyte.gz
"""
import argparse, gzip, os, struct, sys, zlib


def read_png(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG file")
    pos, idat, width = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or interlace != 0 or colour not in (0, 2, 4, 6):
                raise ValueError(f"{path}: only 8-bit non-interlaced grey/RGB(A) PNGs are supported")
            channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    raw, stride = zlib.decompress(idat), width * channels
    rows, previous, i = [], bytearray(stride), 0
    for _ in range(height):
        kind, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b = previous[x]
            c = previous[x - channels] if x >= channels else 0
            if kind == 1: line[x] = (line[x] + a) & 255
            elif kind == 2: line[x] = (line[x] + b) & 255
            elif kind == 3: line[x] = (line[x] + (a + b) // 2) & 255
            elif kind == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([line[x * channels] for x in range(width)])  # first channel (the images are grey)
        previous = line
    return rows


def read_idx(path):
    data = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
    magic, n, h, w = struct.unpack(">IIII", data[:16])
    if magic != 2051:
        raise ValueError(f"{path}: not an IDX image file (magic {magic})")
    return [[list(data[16 + k * h * w + y * w:16 + k * h * w + (y + 1) * w]) for y in range(h)] for k in range(n)]


def score(images, patch):
    on = off = n_on = n_off = 0
    for img in images:
        h, w = len(img), len(img[0])
        for y in range(h):
            for x in range(w - 1):
                d = abs(img[y][x + 1] - img[y][x])
                if (x + 1) % patch == 0: on += d; n_on += 1
                else: off += d; n_off += 1
        for y in range(h - 1):
            for x in range(w):
                d = abs(img[y + 1][x] - img[y][x])
                if (y + 1) % patch == 0: on += d; n_on += 1
                else: off += d; n_off += 1
    return (on / n_on) / (off / n_off) if off else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patch", type=int, default=4)
    parser.add_argument("paths", nargs="+")
    args = parser.parse_args()
    for path in args.paths:
        if os.path.isdir(path):
            files = sorted(f for f in os.listdir(path) if f.endswith(".png") and f != "grid.png")
            images = [read_png(os.path.join(path, f)) for f in files]
        else:
            images = read_idx(path)
        print(f"{score(images, args.patch):.3f}  patch-grid score ({len(images)} images, patch {args.patch})  {path}")


if __name__ == "__main__":
    sys.exit(main())
