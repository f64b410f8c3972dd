#!/usr/bin/env python3
"""McDit against the PyTorch reference (reference.py), interleaved: A, B, A, B, ... one step at a time.

Both sides run as worker processes (benchmarks/McDit.Benchmarks --serve and reference.py --serve) that build a case,
warm it up, then take turns: McDit one step, PyTorch one step, and so on, so both see the same machine load. For each
case it prints the median step time of each side, the ratio of the medians (McDit / PyTorch) and the spread of the
per-pair ratios (25th-75th percentile, min-max), the peak memory of each side, and for each side the ratios of MaskDiT
and MC-DiT to DiT.

  benchmarks/pytorch/setup.sh                      # once: Debian's python3-torch with OpenBLAS (OpenMP) as its BLAS
  dotnet build benchmarks/McDit.Benchmarks -c Release
  python3 benchmarks/pytorch/compare.py --threads 1 --pairs 7

Cases (--cases, comma-separated names): tiny (train at Tiny/4, the demo's 1x28x28, batch 32, 10 classes),
s2 and b2 (train at S/2 and B/2 on 4x32x32, batch 16, 1000 classes; DiT, MaskDiT and MC-DiT each),
sample-tiny and sample-s2 (one Euler step with guidance 2 at batch 64, so 128 rows through the network).
"""
import argparse
import os
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
METHODS = ["DiT", "MaskDiT", "McDiT"]
CASES = {
    "tiny": [("train", m, "Tiny/4", 28, 1, 32, 10) for m in METHODS],
    "s2": [("train", m, "S/2", 32, 4, 16, 1000) for m in METHODS],
    "b2": [("train", m, "B/2", 32, 4, 16, 1000) for m in METHODS],
    "sample-tiny": [("sample", "McDiT", "Tiny/4", 28, 1, 64, 10)],
    "sample-s2": [("sample", "DiT", "S/2", 32, 4, 64, 1000)],
}


class WorkerProcess:
    def __init__(self, name, argv, env):
        self.name = name
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT, bufsize=1)

    def ask(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        while True:
            answer = self.p.stdout.readline()
            if not answer:
                sys.exit(f"{self.name}: the worker ended (exit code {self.p.wait()}) while answering '{line}'")
            answer = answer.strip()
            if answer.split(" ", 1)[0] in ("ok", "ms", "mem", "info", "error"):
                break  # other lines (log output of the libraries) are skipped
        if answer.startswith("error"):
            sys.exit(f"{self.name}: '{line}' failed: {answer[6:]}")
        return answer.split(" ", 1)[1] if " " in answer else ""

    def close(self):
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.flush()
        except BrokenPipeError:
            pass
        self.p.wait(timeout=60)


class GpuMemoryPoller(threading.Thread):
    """Peak memory per process on the GPU as nvidia-smi reports it (CUDA context and caching allocator included), polled
    every 0.1 s: the one figure both sides have (TorchSharp does not expose libtorch's max_memory_allocated)."""

    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids, self.peak, self.stop = set(pids), {p: 0 for p in pids}, threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=10).stdout
                for line in out.splitlines():
                    pid, mib = (x.strip() for x in line.split(","))
                    if int(pid) in self.pids:
                        self.peak[int(pid)] = max(self.peak[int(pid)], int(mib))
            except (OSError, ValueError, subprocess.SubprocessError):
                pass
            self.stop.wait(0.1)


def probe_allocator_stats(mcdit_argv, env):
    """McDit reads libtorch's CUDA allocator statistics through its vtable (CudaAllocatorStats.cs): safe only where the
    layout is the one it checks for. Its self-test runs here in a process of its own, so that a crash costs only the
    figure; without a pass, McDit's memory is the per-process figure nvidia-smi reports."""
    try:
        probe = subprocess.run(mcdit_argv, input="allocator\nquit\n", capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
        answer = next((l.strip() for l in probe.stdout.splitlines() if l.startswith(("ok ", "error "))), f"no answer (exit code {probe.returncode})")
    except subprocess.TimeoutExpired:
        answer = "no answer in 300 s"
    print(f"  McDit's CUDA allocator statistics: {answer}")
    return answer.startswith("ok pass")


def allocated_cell(mc, py):
    """'McDit / PyTorch (ratio)' in MiB of torch.cuda.max_memory_allocated; n/a for McDit without its allocator figures."""
    return f"{mc:.0f} / {py:.0f} ({mc / py:.3f})" if mc is not None else f"n/a / {py:.0f}"


def percentile(v, q):
    s = sorted(v)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def load_average():
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except OSError:
        return float("nan")


def openblas_core(python, env):
    """The fastest OpenBLAS kernels the CPU can run, so the reference is not handicapped. OpenBLAS 0.3.21 (Debian 12)
    does not know every CPU newer than it: on Sapphire/Emerald Rapids it falls back to its SSE3 Prescott kernels (2-3x
    slower). Where it picked kernels without AVX-512 on a CPU that has it, name SkylakeX (its AVX-512 kernels); where it
    picked nothing usable, the family the CPU's flags support. OPENBLAS_CORETYPE, when set, wins (the caller checks)."""
    probe = subprocess.run([python, "-c", "import torch; torch.mm(torch.ones(8, 8), torch.ones(8, 8))"],
                           env=dict(env, OPENBLAS_VERBOSE="2"), capture_output=True, text=True)
    core = next((l.split(":", 1)[1].strip() for l in (probe.stdout + probe.stderr).splitlines() if l.startswith("Core:")), "")
    flags = set(open("/proc/cpuinfo").read().split())
    avx512 = {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= flags
    if core in ("SkylakeX", "Cooperlake", "SapphireRapids") or (core and core != "Prescott" and not avx512):
        return core
    chosen = "SkylakeX" if avx512 else "Haswell" if "avx2" in flags else core
    if chosen and chosen != core:
        print(f"  OpenBLAS chose '{core or '?'}' kernels for this CPU; using OPENBLAS_CORETYPE={chosen} (the CPU has "
              f"{'AVX-512' if chosen == 'SkylakeX' else 'AVX2'})")
    return chosen


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="tiny,s2,sample-tiny,sample-s2", help="comma-separated: " + ", ".join(CASES))
    ap.add_argument("--threads", default="1", help="comma-separated thread counts, each a fresh pair of workers")
    ap.add_argument("--pairs", type=int, default=7, help="timed (McDit, PyTorch) pairs per case")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per side before the pairs")
    ap.add_argument("--clock", default="wall", choices=["wall", "cpu"],
                    help="wall: elapsed time; cpu: each process's CPU time per step, steadier on a machine shared with other "
                         "jobs (one thread only: with more, OpenMP's spin-waiting counts as CPU time)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "bf16"],
                    help="fp32 (CPU), tf32 (CUDA: fp32 with TF32 matmuls on both sides), bf16 (McDit BFloat16 vs PyTorch autocast)")
    ap.add_argument("--baseline", default=None,
                    help="side B is McDit built elsewhere (a McDit.Benchmarks.dll) instead of PyTorch: A/B timing of a code change")
    ap.add_argument("--baseline-env", action="append", default=[], metavar="NAME=VALUE",
                    help="set in side B's environment only; without --baseline, side B is the same McDit build: A/B timing of "
                         "a switch, e.g. --baseline-env MCDIT_KEEP_MKL_VENDOR_CHECK=1 (repeatable)")
    ap.add_argument("--python", default="/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable)
    ap.add_argument("--mcdit", default=os.path.join(ROOT, "benchmarks/McDit.Benchmarks/bin/Release/net10.0/McDit.Benchmarks.dll"),
                    help="the built benchmark (dll), or a command such as 'bash .gpu/run.sh'")
    a = ap.parse_args()
    cases = [c for name in a.cases.split(",") for c in CASES[name.strip()]]
    mcdit_precision = {"fp32": "Float32", "tf32": "Float32", "bf16": "BFloat16"}[a.precision]
    mcdit_cmd = ["dotnet", a.mcdit] if a.mcdit.endswith(".dll") else a.mcdit.split()
    if a.mcdit.endswith(".dll") and not os.path.exists(a.mcdit):
        sys.exit(f"{a.mcdit} is missing: run 'dotnet build benchmarks/McDit.Benchmarks -c Release' first")
    baseline_env = {}
    for item in a.baseline_env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            sys.exit(f"--baseline-env '{item}': expected NAME=VALUE")
        baseline_env[name] = value
    if baseline_env and not a.baseline:
        a.baseline = a.mcdit
    if a.baseline:
        print(f"Side B ('PyTorch' in the output) is the McDit baseline {a.baseline}"
              + (f" with {' '.join(a.baseline_env)}" if baseline_env else ""))
    print(f"compare.py: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, host {os.uname().nodename}, "
          f"{os.cpu_count()} CPUs, load average {load_average():.2f}, device {a.device}, precision {a.precision}, clock {a.clock}")
    rows = []
    allocator_stats = None if a.device.startswith("cuda") and not a.baseline else False
    for threads in [int(t) for t in a.threads.split(",")]:
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
        if a.device == "cpu" and "OPENBLAS_CORETYPE" not in env and not a.baseline:
            env["OPENBLAS_CORETYPE"] = openblas_core(a.python, env)

        tf32 = "1" if a.precision in ("tf32", "bf16") else "0"  # TF32 on for the float32 products in both, as reference.py
        mcdit_argv = mcdit_cmd + ["--serve", "--device", a.device, "--precision", mcdit_precision, "--tf32", tf32, "--threads", str(threads)]
        if a.device.startswith("cuda") and allocator_stats is None:
            allocator_stats = probe_allocator_stats(mcdit_argv, env)
        if allocator_stats:
            mcdit_argv += ["--allocator-stats", "1"]

        def start():
            mc = WorkerProcess("McDit", mcdit_argv, env)
            if a.baseline:
                py = WorkerProcess("PyTorch", ["dotnet", a.baseline, "--serve", "--device", a.device, "--precision", mcdit_precision,
                                               "--tf32", tf32, "--threads", str(threads)], dict(env, **baseline_env))
            else:
                py = WorkerProcess("PyTorch", [a.python, os.path.join(ROOT, "benchmarks/pytorch/reference.py"), "--serve",
                                               "--device", a.device, "--precision", a.precision, "--threads", str(threads)], env)
            return mc, py

        for index, case in enumerate(cases):
            # A fresh pair of workers per case, so that each peak-memory figure is that case's own.
            mc, py = start()
            if index == 0:
                print(f"  threads {threads}, OPENBLAS_CORETYPE={env.get('OPENBLAS_CORETYPE', '(auto)')}\n  A: {mc.ask('info')}\n  B: {py.ask('info')}")
            kind, method, model, size, channels, batch, classes = case
            setup = f"setup {kind} {method} {model} {size} {channels} {batch} {classes}"
            sides = {}
            poller = None
            if a.device.startswith("cuda"):
                poller = GpuMemoryPoller([mc.p.pid, py.p.pid])
                poller.start()
            for w in (mc, py):
                params = int(w.ask(setup))
                w.ask(f"run {a.warmup}")
                sides[w.name] = {"params": params, "ms": []}
            load = []
            for _ in range(a.pairs):
                load.append(load_average())
                for w in (mc, py):
                    wall = float(w.ask("run 1"))
                    sides[w.name]["ms"].append(wall if a.clock == "wall" else float(w.ask("cpu")))
            for w in (mc, py):
                peak, other = w.ask("mem").split()
                sides[w.name]["mem"] = int(peak) / 1024
            allocated = ""
            if poller is not None:
                poller.stop.set()
                poller.join()
                # CUDA: the caching allocators' peaks (torch.cuda.max_memory_allocated on both sides where McDit's passed
                # its self-test), and the per-process figures nvidia-smi reports (CUDA context and cache included)
                for w in (mc, py):
                    sides[w.name]["alloc"] = sides[w.name]["mem"] if w is py or allocator_stats else None
                    sides[w.name]["mem"] = poller.peak[w.p.pid]
                if not a.baseline:
                    allocated = ", max_memory_allocated MiB " + allocated_cell(sides["McDit"]["alloc"], sides["PyTorch"]["alloc"])
            mc.close()
            py.close()
            m, p = sides["McDit"]["ms"], sides["PyTorch"]["ms"]
            pair = [x / y for x, y in zip(m, p)]
            row = dict(kind=kind, method=method, model=model, shape=f"{channels}x{size}x{size}", batch=batch, threads=threads,
                       mc=statistics.median(m), py=statistics.median(p), pair=pair,
                       mc_mem=sides["McDit"]["mem"], py_mem=sides["PyTorch"]["mem"], load=(min(load), max(load)),
                       mc_alloc=sides["McDit"].get("alloc"), py_alloc=sides["PyTorch"].get("alloc"),
                       params=(sides["McDit"]["params"], sides["PyTorch"]["params"]))
            row["ratio"] = row["mc"] / row["py"]
            rows.append(row)
            print(f"  {kind:6} {method + '-' + model:14} {row['shape']:8} b{batch:<3} t{threads}: McDit {row['mc']:9.1f} ms, "
                  f"PyTorch {row['py']:9.1f} ms, ratio {row['ratio']:.3f} (pair ratios median {statistics.median(pair):.3f}, p25-p75 {percentile(pair, .25):.3f}-{percentile(pair, .75):.3f}, "
                  f"min-max {min(pair):.3f}-{max(pair):.3f}), peak MiB {row['mc_mem']:.0f} / {row['py_mem']:.0f}, "
                  f"load {row['load'][0]:.1f}-{row['load'][1]:.1f}, params {row['params'][0]:,} / {row['params'][1]:,}{allocated}", flush=True)
            print(f"         McDit ms: {' '.join(f'{t:.0f}' for t in m)}; PyTorch ms: {' '.join(f'{t:.0f}' for t in p)}", flush=True)
            if kind == "sample":
                # the demo's sampler: 18 Heun steps = 35 guided evaluations of the batch
                print(f"         images/s at 18 Heun steps (35 evaluations of batch {batch}): McDit {batch / (35 * row['mc'] / 1000):.2f}, "
                      f"PyTorch {batch / (35 * row['py'] / 1000):.2f}", flush=True)

    print()
    cuda = a.device.startswith("cuda") and not a.baseline
    peak_header = "peak MiB per process (nvidia-smi) McDit / PyTorch | max_memory_allocated MiB McDit / PyTorch (ratio)" if cuda else "peak MiB McDit / PyTorch"
    print(f"| case | threads | McDit ms | PyTorch ms | ratio of medians | median pair ratio | pair ratios p25–p75 (min–max) | {peak_header} | load |")
    print("|---|---:|---:|---:|---:|---:|---|---|" + ("---|" if cuda else "") + "---|")
    for r in rows:
        alloc = f" {allocated_cell(r['mc_alloc'], r['py_alloc'])} |" if cuda else ""
        print(f"| {r['kind']} {r['method']}-{r['model']} {r['shape']} b{r['batch']} | {r['threads']} | {r['mc']:.1f} | {r['py']:.1f} | "
              f"{r['ratio']:.3f} | {statistics.median(r['pair']):.3f} | {percentile(r['pair'], .25):.3f}–{percentile(r['pair'], .75):.3f} ({min(r['pair']):.3f}–{max(r['pair']):.3f}) | "
              f"{r['mc_mem']:.0f} / {r['py_mem']:.0f} |{alloc} {r['load'][0]:.1f}–{r['load'][1]:.1f} |")
    print()
    print("| model | threads | side | MaskDiT / DiT | MC-DiT / DiT |")
    print("|---|---:|---|---:|---:|")
    for threads in sorted({r["threads"] for r in rows}):
        for model in dict.fromkeys(r["model"] for r in rows if r["kind"] == "train"):
            by = {r["method"]: r for r in rows if r["kind"] == "train" and r["model"] == model and r["threads"] == threads}
            if "DiT" not in by:
                continue
            for side in ("mc", "py"):
                cells = [f"{by[m][side] / by['DiT'][side]:.2f}" if m in by else "" for m in ("MaskDiT", "McDiT")]
                print(f"| {model} | {threads} | {'McDit' if side == 'mc' else 'PyTorch'} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
