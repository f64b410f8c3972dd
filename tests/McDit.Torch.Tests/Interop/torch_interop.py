"""PyTorch side of McDit's interop tests (run with Debian's /usr/bin/python3 and python3-torch; no network).

  write FIXTURE OUT LAYOUT      write the fixture's model weights as OUT with torch.save, LAYOUT one of:
                                 bare        the state dict (an OrderedDict), like DiT-XL-2-256x256.pt
                                 checkpoint  {"model", "ema", "opt", "args"} as DiT's train.py saves it (args: argparse.Namespace,
                                             opt: an AdamW state dict after one step; ema = the weights, model = weights + 1)
                                 maskdit     the checkpoint layout with MaskDiT's EDM-wrapper prefix "model." on every name
  evil OUT MARKER               a pickle whose loading would run os.system("touch MARKER")
  spacing T N                   the timesteps DiT's space_timesteps(T, "N") keeps (its accumulate-and-round loop, in Python)
  check FILE FIXTURE FORMAT     torch.load(FILE, weights_only=True); the state dict (or its "ema") must equal the fixture's
                                weights exactly under FORMAT's names (dit, maskdit); prints what differs and exits 1 otherwise
"""
import argparse
import collections
import json
import os
import struct
import sys

import torch

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "F16": torch.float16}
DATA_PREFIXES = ("input.", "output", "cfg.", "train.", "eval.", "sample.", "mask.")


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    out = collections.OrderedDict()
    for name in sorted(k for k in header if k != "__metadata__"):
        e = header[name]
        b, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:end]), dtype=DTYPES[e["dtype"]]) if end > b else torch.empty(0, dtype=DTYPES[e["dtype"]])
        out[name] = t.reshape(e["shape"]).clone()
    return out, header.get("__metadata__", {})


def weights(fixture):
    tensors, meta = read_safetensors(fixture)
    return collections.OrderedDict((k, v) for k, v in tensors.items() if not k.startswith(DATA_PREFIXES)), meta


def write(fixture, out, layout):
    sd, meta = weights(fixture)
    if layout == "bare":
        torch.save(sd, out)
        return
    config = json.loads(meta["config"])
    params = [torch.nn.Parameter(v.clone()) for v in sd.values()]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    args = argparse.Namespace(model="DiT-Micro/2", image_size=config["input_size"] * 8, num_classes=config["num_classes"],
                              epochs=1400, global_batch_size=256, global_seed=0, vae="ema", num_workers=4,
                              results_dir="results", ckpt_every=50000, lr=1e-4, betas=(0.9, 0.999), tags=["a", "b"], resume=None)
    prefix = "model." if layout == "maskdit" else ""
    model = collections.OrderedDict((prefix + k, v + 1) for k, v in sd.items())
    ema = collections.OrderedDict((prefix + k, v) for k, v in sd.items())
    torch.save({"model": model, "ema": ema, "opt": opt.state_dict(), "args": args}, out)


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("touch " + self.marker,))


def evil(out, marker):
    torch.save({"x_embedder.proj.weight": torch.zeros(2, 2), "payload": Evil(marker)}, out)


def check(path, fixture, fmt):
    loaded = torch.load(path, weights_only=True)
    if isinstance(loaded, dict) and "ema" in loaded and not isinstance(loaded["ema"], torch.Tensor):
        loaded = loaded["ema"]
    if fmt == "maskdit" and all(k.startswith("model.") for k in loaded):
        loaded = {k[len("model."):]: v for k, v in loaded.items()}
    expected, _ = weights(fixture)
    problems = []
    if set(loaded) != set(expected):
        problems.append("names differ: missing %s, unexpected %s" % (sorted(set(expected) - set(loaded))[:5], sorted(set(loaded) - set(expected))[:5]))
    for k, v in expected.items():
        if k in loaded:
            got = loaded[k]
            if got.shape != v.shape or got.dtype != v.dtype:
                problems.append("%s: %s %s, expected %s %s" % (k, got.dtype, tuple(got.shape), v.dtype, tuple(v.shape)))
            elif not torch.equal(got, v):
                problems.append("%s: max difference %g" % (k, (got - v).abs().max().item()))
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print("ok: %d tensors equal" % len(expected))


def spacing(t, n):
    # As DiT's diffusion/respace.py space_timesteps for one section: stride (T-1)/(N-1), accumulated, Python round().
    stride = (t - 1) / (n - 1)
    cur, taken = 0.0, []
    for _ in range(n):
        taken.append(round(cur))
        cur += stride
    print(",".join(str(x) for x in sorted(set(taken))))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "write":
        write(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "evil":
        evil(sys.argv[2], sys.argv[3])
    elif cmd == "spacing":
        spacing(int(sys.argv[2]), int(sys.argv[3]))
    elif cmd == "check":
        check(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit("unknown command " + cmd)
