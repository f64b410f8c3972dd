#!/usr/bin/env python3
"""PyTorch reference of McDit's benchmark cases, written for this repository.

It defines the DiT, MaskDiT and MC-DiT training steps that McDit's `DiffusionTrainer.Step` makes (same shapes,
parameter names after facebookresearch/DiT and Anima-Lab/MaskDiT, the same initialisation, torch.optim.AdamW with
McDit's defaults, the weight EMA and MC-DiT's branch EMA) and one guided sampler step, so that
`benchmarks/pytorch/compare.py` can time both side by side. The losses are not compared (other random numbers);
the work is: the same matrix products on the same shapes, the same element-wise terms, the same optimizer and EMAs.

One-shot:  python3 reference.py --case train --method DiT --model S/2 --input 32 --channels 4 --batch 16
Worker:    python3 reference.py --serve   (line protocol of compare.py, see WORKER PROTOCOL below)
"""
import argparse
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SIZES = {"Micro": (2, 64, 4), "Tiny": (6, 192, 6), "S": (12, 384, 6), "B": (12, 768, 12), "L": (24, 1024, 16), "XL": (28, 1152, 16)}


def default_decoder(width):
    """McDit's DiffusionTransformerConfig.WithDefaultDecoder: (depth, width, heads) of MaskDiT's light decoder."""
    if width <= 64:
        return 1, 64, 4
    if width <= 192:
        return 2, 128, 4
    if width <= 384:
        return 4, 256, 8
    return 8, 512, 16


def sincos_2d(dim, grid):
    """Fixed 2-D sin-cos position table [1, grid², dim] (half the width for rows, half for columns)."""
    def one_d(d, pos):
        omega = 1.0 / 10000 ** (torch.arange(d // 2, dtype=torch.float64) / (d / 2.0))
        out = pos.reshape(-1, 1) * omega.reshape(1, -1)
        return torch.cat([torch.sin(out), torch.cos(out)], dim=1)
    ys, xs = torch.meshgrid(torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64), indexing="ij")
    table = torch.cat([one_d(dim // 2, ys), one_d(dim // 2, xs)], dim=1)
    return table.float().unsqueeze(0)


def xavier_as_linear(w):
    fan_out = w.shape[0]
    fan_in = w.numel() // fan_out
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        w.uniform_(-bound, bound)


def linear(i, o, init="xavier"):
    layer = nn.Linear(i, o)
    with torch.no_grad():
        if init == "xavier":
            xavier_as_linear(layer.weight)
        elif init == "normal":
            layer.weight.normal_(0, 0.02)
        else:
            layer.weight.zero_()
        layer.bias.zero_()
    return layer


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = linear(dim, 3 * dim)
        self.proj = linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        if hasattr(F, "scaled_dot_product_attention"):
            o = F.scaled_dot_product_attention(q, k, v)
        else:  # PyTorch 1.x (Debian bookworm's python3-torch): the same product spelled out
            o = torch.softmax((q * (q.shape[-1] ** -0.5)) @ k.transpose(-2, -1), dim=-1) @ v
        return self.proj(o.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = linear(dim, hidden)
        self.fc2 = linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class DiTBlock(nn.Module):
    def __init__(self, dim, cond, heads, mlp_ratio=4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), linear(cond, 6 * dim, init="zero"))

    def forward(self, x, c):
        s1, sc1, g1, s2, sc2, g2 = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + g1.unsqueeze(1) * self.attn(modulate(self.norm1(x), s1, sc1))
        return x + g2.unsqueeze(1) * self.mlp(modulate(self.norm2(x), s2, sc2))


class FinalLayer(nn.Module):
    def __init__(self, dim, cond, out):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.linear = linear(dim, out, init="zero")
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), linear(cond, 2 * dim, init="zero"))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm(x), shift, scale))


class PatchEmbed(nn.Module):
    def __init__(self, channels, dim, p):
        super().__init__()
        self.proj = nn.Conv2d(channels, dim, p, stride=p)
        xavier_as_linear(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class TimestepEmbedder(nn.Module):
    def __init__(self, dim, freq=256):
        super().__init__()
        self.freq = freq
        self.mlp = nn.Sequential(linear(freq, dim, init="normal"), nn.SiLU(), linear(dim, dim, init="normal"))

    def forward(self, t):
        half = self.freq // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
        args = t.float().unsqueeze(1) * freqs.unsqueeze(0)
        emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        return self.mlp(emb.to(self.mlp[0].weight.dtype))


class Decoder(nn.Module):
    """MaskDiT's light decoder (decoder_layer, decoder_pos_embed, decoder_blocks, mask_token) and final_layer."""

    def __init__(self, cfg):
        super().__init__()
        d, out = cfg["dim"], cfg["p"] ** 2 * cfg["channels"]
        self.has_decoder = cfg["decoder"] is not None
        if self.has_decoder:
            depth, width, heads = cfg["decoder"]
            self.decoder_layer = FinalLayer(d, d, width)
            self.decoder_pos_embed = nn.Parameter(sincos_2d(width, cfg["grid"]), requires_grad=False)
            self.decoder_blocks = nn.ModuleList([DiTBlock(width, d, heads) for _ in range(depth)])
            self.mask_token = nn.Parameter(torch.randn(1, 1, width) * 0.02)
            self.final_layer = FinalLayer(width, d, out)
        else:
            self.final_layer = FinalLayer(d, d, out)

    def forward(self, x, c, ids_restore=None, fill=None):
        if self.has_decoder:
            x = self.decoder_layer(x, c)
            if ids_restore is not None:
                if fill is None:
                    fill = self.mask_token.expand(x.shape[0], ids_restore.shape[1] - x.shape[1], x.shape[2])
                x = torch.cat([x, fill], dim=1)
                x = torch.gather(x, 1, ids_restore.unsqueeze(-1).expand(-1, -1, x.shape[2]))
            x = x + self.decoder_pos_embed
            for block in self.decoder_blocks:
                x = block(x, c)
        return self.final_layer(x, c)


class Net(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        d = cfg["dim"]
        self.x_embedder = PatchEmbed(cfg["channels"], d, cfg["p"])
        self.pos_embed = nn.Parameter(sincos_2d(d, cfg["grid"]), requires_grad=False)
        self.t_embedder = TimestepEmbedder(d)
        self.y_embedder = nn.Embedding(cfg["classes"] + 1, d)
        nn.init.normal_(self.y_embedder.weight, std=0.02)
        self.blocks = nn.ModuleList([DiTBlock(d, d, cfg["heads"]) for _ in range(cfg["depth"])])
        self.decoder = Decoder(cfg)
        if cfg["clean_embedder"]:
            self.clean_embedder = PatchEmbed(cfg["channels"], cfg["decoder"][1], cfg["p"])

    def condition(self, c_noise, y):
        return self.t_embedder(c_noise) + self.y_embedder(y)

    def embed(self, x):
        return self.x_embedder(x) + self.pos_embed

    def encode(self, x, c):
        for block in self.blocks:
            x = block(x, c)
        return x

    def unpatchify(self, x):
        p, ch, h = self.cfg["p"], self.cfg["channels"], self.cfg["grid"]
        return x.reshape(x.shape[0], h, h, p, p, ch).permute(0, 5, 1, 3, 2, 4).reshape(x.shape[0], ch, h * p, h * p)

    def forward(self, x_in, c_noise, y):
        c = self.condition(c_noise, y)
        return self.unpatchify(self.decoder(self.encode(self.embed(x_in), c), c))


def patchify(x, p):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1).reshape(n, (h // p) * (w // p), p * p * c)


def patch_mean(per_pixel, p):
    return F.avg_pool2d(per_pixel.mean(1), p).flatten(1)


def normalized_patch_error(pred, target, mask, p):
    t = patchify(target, p)
    t = (t - t.mean(-1, keepdim=True)) / (t.var(-1, keepdim=True) + 1e-6).sqrt()
    per_patch = (patchify(pred, p) - t).square().mean(-1)
    return (per_patch * mask).sum(1) / mask.sum(1)


def gather_tokens(x, ids):
    return torch.gather(x, 1, ids.unsqueeze(-1).expand(-1, -1, x.shape[2]))


class Step:
    """One training step of a method, as McDit's DiffusionTrainer.Step makes it (EDM, σ_data 0.5, P_mean −1.2, P_std 1.2)."""

    def __init__(self, method, cfg, batch, device, dtype, autocast, generator):
        self.method, self.cfg, self.device, self.autocast = method, cfg, device, autocast
        self.model = Net(cfg).to(device)
        self.ema = Net(cfg).to(device).eval().requires_grad_(False)
        self.ema.load_state_dict(self.model.state_dict())
        # MC-DiT's noisy and clean branches are EMAs of the decoder with one decay from one start: one copy serves both.
        self.branch = None
        if method == "McDiT":
            self.branch = Decoder(cfg).to(device).eval().requires_grad_(False)
            self.branch.load_state_dict(self.model.decoder.state_dict())
        if dtype is not None:
            self.model.to(dtype)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(self.params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
        self.ema_pairs = list(zip(self.ema.parameters(), self.model.parameters()))
        self.branch_pairs = list(zip(self.branch.parameters(), self.model.decoder.parameters())) if self.branch else []
        g = generator
        size, ch = cfg["input"], cfg["channels"]
        self.images = torch.randn(batch, ch, size, size, generator=g).clamp(-1, 1).to(device)
        self.labels = torch.randint(0, cfg["classes"], (batch,), generator=g).to(device)
        self.gen = g
        self.p = cfg["p"]

    def loss(self, x0, y):
        n, sd, p, dev = x0.shape[0], 0.5, self.p, self.device
        g, m = self.gen, self.model
        sigma = (torch.randn(n, generator=g) * 1.2 - 1.2).exp().to(dev)
        noise = torch.randn(x0.shape, generator=g).to(dev)
        drop = (torch.rand(n, generator=g) < 0.1).to(dev)
        y = torch.where(drop, torch.full_like(y, self.cfg["classes"]), y)
        s4 = sigma.reshape(-1, 1, 1, 1)
        x_noisy = x0 + noise * s4
        weight = (s4 ** 2 + sd ** 2) / (s4 * sd) ** 2
        c_skip, c_out, c_in = sd ** 2 / (s4 ** 2 + sd ** 2), s4 * sd / (s4 ** 2 + sd ** 2).sqrt(), 1 / (s4 ** 2 + sd ** 2).sqrt()
        c = m.condition(sigma.log() / 4, y)
        tokens = m.embed(c_in * x_noisy)
        if self.method == "DiT":
            d = c_skip * x_noisy + c_out * m.unpatchify(m.decoder(m.encode(tokens, c), c))
            return (weight * (d - x0).square()).mean((1, 2, 3))
        length = tokens.shape[1]
        keep = max(1, int(length * 0.5))
        ids_shuffle = torch.rand(n, length, generator=g).argsort(1).to(dev)
        ids_restore = ids_shuffle.argsort(1)
        ids_keep, ids_masked = ids_shuffle[:, :keep], ids_shuffle[:, keep:]
        mask = (ids_restore >= keep).float()
        visible = 1 - mask
        kept = gather_tokens(tokens, ids_keep)
        if self.method == "MaskDiT":
            patches = m.decoder(m.encode(kept, c), c, ids_restore)
            d = c_skip * x_noisy + c_out * m.unpatchify(patches)
            err = patch_mean(weight * (d - x0).square(), p)
            return (err * visible).sum(1) / visible.sum(1) + 0.1 * normalized_patch_error(d, x_noisy, mask, p)
        # MC-DiT: the noisy visible tokens and the clean visible tokens (σ → 0.002) go through the encoder as one batch.
        clean_sigma = torch.full((n,), 0.002, device=dev)
        c_clean = m.condition(clean_sigma.log() / 4, y)
        clean_in = m.embed(x0 / (0.002 ** 2 + sd ** 2) ** 0.5)
        encoded = m.encode(torch.cat([kept, gather_tokens(clean_in, ids_keep)]), torch.cat([c, c_clean]))
        enc_noisy = encoded[:n]
        fill = gather_tokens(m.clean_embedder(x0 / sd), ids_masked)
        d = c_skip * x_noisy + c_out * m.unpatchify(m.decoder(enc_noisy, c, ids_restore, fill))
        err = patch_mean(weight * (d - x0).square(), p)
        main = (err * visible).sum(1) / visible.sum(1) + 0.1 * normalized_patch_error(d, x_noisy, mask, p)
        # Both EMA branches (one shared copy): noisy-branch denoising on the visible tokens, clean-branch reconstruction.
        out = m.unpatchify(self.branch(encoded, torch.cat([c, c_clean]), torch.cat([ids_restore, ids_restore])))
        dn = c_skip * x_noisy + c_out * out[:n]
        noisy_term = (patch_mean(weight * (dn - x0).square(), p) * visible).sum(1) / visible.sum(1)
        clean_term = 0.1 * normalized_patch_error(out[n:], x0, mask, p)
        return main + noisy_term + clean_term

    def __call__(self):
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            per_sample = self.loss(self.images, self.labels)
            loss = per_sample.mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        with torch.no_grad():
            for e, s in self.ema_pairs:
                e.mul_(0.999).add_(s.to(e.dtype), alpha=0.001)
            for e, s in self.branch_pairs:
                e.mul_(0.999).add_(s.to(e.dtype), alpha=0.001)
        return loss.item()  # one host synchronisation per step, as McDit's


class SampleStep:
    """One Euler step of the EDM sampler with classifier-free guidance (scale 2) on a batch: [x; x], labels [y; null]."""

    def __init__(self, method, cfg, batch, device, dtype, autocast, generator):
        self.model = Net(cfg).to(device).eval().requires_grad_(False)
        if dtype is not None:
            self.model.to(dtype)
        self.dtype = dtype or torch.float32
        self.device, self.autocast, self.cfg = device, autocast, cfg
        size, ch = cfg["input"], cfg["channels"]
        self.latents = torch.randn(batch, ch, size, size, generator=generator).to(device)
        y = torch.randint(0, cfg["classes"], (batch,), generator=generator).to(device)
        self.y = torch.cat([y, torch.full_like(y, cfg["classes"])])
        self.batch = batch

    def denoise(self, x, sigma):
        sd = 0.5
        s4 = torch.full((x.shape[0], 1, 1, 1), sigma, device=self.device)
        c_skip, c_out, c_in = sd ** 2 / (s4 ** 2 + sd ** 2), s4 * sd / (s4 ** 2 + sd ** 2).sqrt(), 1 / (s4 ** 2 + sd ** 2).sqrt()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            f = self.model((c_in * x).to(self.dtype), (s4.reshape(-1).log() / 4).to(self.dtype), self.y)
        return c_skip * x + c_out * f.float()

    def __call__(self):
        with torch.inference_mode():
            n, t_cur, t_next = self.batch, 80.0, 40.0
            x = self.latents.double() * t_cur
            both = torch.cat([x, x]).float()
            d2 = self.denoise(both, t_cur)
            d = d2[n:] + (d2[:n] - d2[n:]) * 2.0
            x = x + (x - d.double()) / t_cur * (t_next - t_cur)
        return 0.0


def model_config(model, size, channels, classes, method):
    name, p = model.split("/")
    depth, dim, heads = SIZES[name]
    return {"depth": depth, "dim": dim, "heads": heads, "p": int(p), "input": size, "channels": channels, "classes": classes,
            "grid": size // int(p), "decoder": None if method == "DiT" else default_decoder(dim), "clean_embedder": method == "McDiT"}


def rss_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux ≥ 4.0)
    except OSError:
        pass


def blas_library():
    """The BLAS library this process loaded (Debian's torch resolves libblas.so.3 through update-alternatives)."""
    torch.mm(torch.ones(64, 64), torch.ones(64, 64))
    try:
        with open("/proc/self/maps") as f:
            paths = {l.split()[-1] for l in f if "blas" in l.lower() and "/" in l}
        return ", ".join(sorted(os.path.realpath(p) for p in paths)) or "none (BLAS built into libtorch)"
    except OSError:
        return "unknown"


class Worker:
    def __init__(self, device, precision):
        self.device = torch.device(device)
        self.precision = precision
        self.case = None
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = precision in ("tf32", "bf16")
            torch.backends.cudnn.allow_tf32 = precision in ("tf32", "bf16")

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def setup(self, case, method, model, size, channels, batch, classes):
        self.case = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        base = rss_kb("VmRSS")
        reset_peak()
        torch.manual_seed(1)
        g = torch.Generator().manual_seed(1)
        cfg = model_config(model, size, channels, classes, method)
        kind = {"train": Step, "sample": SampleStep}[case]
        # bf16 on CUDA: autocast around float32 weights (PyTorch's usual mixed precision)
        self.case = kind(method, cfg, batch, self.device, None, self.precision == "bf16", g)
        self.base = base
        params = sum(p.numel() for p in self.case.model.parameters() if p.requires_grad or case == "sample")
        return params

    def run(self, n):
        times, self.cpu_times = [], []
        for _ in range(n):
            self.sync()
            t, c = time.perf_counter(), time.process_time()
            self.case()
            self.sync()
            times.append((time.perf_counter() - t) * 1000)
            self.cpu_times.append((time.process_time() - c) * 1000)
        return times

    def memory(self):
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated() // 1024, rss_kb("VmHWM") - self.base
        return rss_kb("VmHWM") - self.base, rss_kb("VmHWM")


# WORKER PROTOCOL (compare.py): one command per line on stdin, one answer line on stdout.
#   setup CASE METHOD MODEL INPUT CHANNELS BATCH CLASSES -> "ok PARAMS"
#   run N                                                -> "ms T1 T2 ..." (wall clock)
#   cpu                                                  -> "ms C1 C2 ..." (CPU time of this process for the last run's steps)
#   mem                                                  -> "mem PEAK_KIB OTHER_KIB" (CPU: peak RSS over the case's start, peak RSS;
#                                                           CUDA: torch.cuda.max_memory_allocated, peak RSS growth)
#   info                                                 -> "info ..." ; quit
def serve(worker):
    out = sys.stdout
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        try:
            if parts[0] == "setup":
                case, method, model = parts[1], parts[2], parts[3]
                size, channels, batch, classes = map(int, parts[4:8])
                out.write(f"ok {worker.setup(case, method, model, size, channels, batch, classes)}\n")
            elif parts[0] == "run":
                out.write("ms " + " ".join(f"{t:.3f}" for t in worker.run(int(parts[1]))) + "\n")
            elif parts[0] == "cpu":
                out.write("ms " + " ".join(f"{t:.3f}" for t in worker.cpu_times) + "\n")
            elif parts[0] == "mem":
                a, b = worker.memory()
                out.write(f"mem {a} {b}\n")
            elif parts[0] == "info":
                out.write(f"info PyTorch {torch.__version__}, threads {torch.get_num_threads()}, device {worker.device}, "
                          f"precision {worker.precision}, BLAS {blas_library()}\n")
            elif parts[0] == "quit":
                break
            else:
                out.write(f"error unknown command '{parts[0]}'\n")
        except Exception as e:  # reported to the runner, which stops
            out.write(f"error {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}\n")
        out.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--serve", action="store_true", help="worker mode for compare.py")
    ap.add_argument("--case", choices=["train", "sample"], default="train")
    ap.add_argument("--method", choices=["DiT", "MaskDiT", "McDiT"], default="DiT")
    ap.add_argument("--model", default="S/2")
    ap.add_argument("--input", type=int, default=32)
    ap.add_argument("--channels", type=int, default=4)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: OMP_NUM_THREADS or torch's default)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", choices=["fp32", "tf32", "bf16"], default="fp32")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit(f"--device {a.device}: this PyTorch ({torch.__version__}) sees no CUDA device")
    worker = Worker(a.device, a.precision)
    if a.serve:
        serve(worker)
        return
    print(f"PyTorch {torch.__version__}, threads {torch.get_num_threads()}, device {a.device}, precision {a.precision}, BLAS {blas_library()}")
    params = worker.setup(a.case, a.method, a.model, a.input, a.channels, a.batch, a.classes)
    worker.run(a.warmup)
    times = worker.run(a.steps)
    peak, other = worker.memory()
    med = sorted(times)[len(times) // 2]
    print(f"{a.case} {a.method}-{a.model} {a.channels}x{a.input}x{a.input} batch {a.batch}: params {params:,}, "
          f"ms {' '.join(f'{t:.0f}' for t in times)}, median {med:.1f} ms, peak memory {peak / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
