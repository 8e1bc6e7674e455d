"""Compression benchmarks: accuracy kept, time to calibrate, speed of the integer kernels, and the chip payoff.

Run:  .venv/bin/python benchmarks/bench_compress.py [--quick]

Tables printed (one run, one thread):
  1. Accuracy on the 360 test digits: float32, int8 PTQ (per-channel weights; each activation calibrator),
     int4 PTQ and int4 QAT, for the digits MLP 64-128-10 and LeNet (16/32 channels, 8x8 inputs).
     Targets: int8 within 0.5 points of float32; int4 with QAT within 1 point.
  2. Time to calibrate and quantize each model on 512 samples, per calibrator. Target: under 5 s.
  3. Integer-only inference (the folded graph's numpy int kernels) against the float64 simulation and the
     float32 model, 360 images: time per batch, and whether the int8 codes agree bit for bit.
  4. Structured pruning: half of LeNet's conv channels, 4 epochs of fine-tuning: accuracy and the chip's
     cycles (target: within 1 point, >= 1.6x fewer cycles); 90% unstructured sparsity: cycles unchanged.
  5. The chip payoff: fp32 on the fp32-equivalent of each preset against int8 on the same chip and on the
     int8 original — cycles, energy, DRAM bytes, with the factors the energy table and the datapath imply.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import argparse  # noqa: E402
import copy  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import aisys  # noqa: E402
from aisys import chip, nn, optim  # noqa: E402
from aisys.chip.energy import mac_pj  # noqa: E402
from aisys.framework import compress  # noqa: E402
from aisys.framework.data import DataLoader  # noqa: E402
from aisys.models import LeNet, MLP, accuracy, digits, train_classifier  # noqa: E402

CALIBRATORS = ("minmax", "percentile", "mse", "kl")


def trained_models(quick: bool):
    """The recipes of tests/framework/compress/conftest.py: seeded, each model with a fresh loader."""
    out = {}
    for name, make, epochs in (("MLP 64-128-10", lambda: MLP([64, 128, 10]), 10),
                               ("LeNet 16/32", lambda: LeNet(image_size=8, channels=(16, 32)), 6 if quick else 12)):
        aisys.manual_seed(0)
        train = DataLoader(digits("train"), 32, shuffle=True, generator=0)
        model = make()
        train_classifier(model, train, epochs=epochs, lr=3e-3, progress=False,
                         scheduler=lambda opt, e=epochs: optim.CosineAnnealingLR(opt, e))
        out[name] = model.eval()
    return out, DataLoader(digits("train"), 32, shuffle=True, generator=0)


def accuracy_table(models, train, calib, test, quick: bool) -> None:
    print("1. Accuracy on the 360 test digits (percent; target: int8 within 0.5 points, int4 QAT within 1)")
    head = f"   {'model':<15} {'fp32':>6} " + " ".join(f"{'int8 ' + c:>14}" for c in CALIBRATORS)
    print(head + f" {'int4 PTQ':>9} {'int4 QAT':>9}")
    for name, model in models.items():
        base = accuracy(model, test)
        row = [accuracy(compress.quantize(model, calib, activations=c), test) for c in CALIBRATORS]
        ptq4 = accuracy(compress.quantize(model, calib, weight_dtype="int4", activations="minmax"), test)
        aisys.manual_seed(0)
        qat = compress.prepare_qat(model, weight_dtype="int4")
        train_classifier(qat, train, epochs=1 if quick else 2, lr=1e-3, progress=False)
        qat4 = accuracy(compress.convert(qat, calib), test)
        print(f"   {name:<15} {100 * base:6.2f} " + " ".join(f"{100 * a:14.2f}" for a in row)
              + f" {100 * ptq4:9.2f} {100 * qat4:9.2f}   worst int8 drop {100 * (base - min(row)):.2f}")
    print()


def calibration_table(models, calib) -> None:
    n = sum(len(x) for x, _ in calib)
    print(f"2. Calibrate + quantize on {n} samples (seconds; target < 5 s)")
    print(f"   {'model':<15} " + " ".join(f"{c:>10}" for c in CALIBRATORS))
    for name, model in models.items():
        times = []
        for c in CALIBRATORS:
            t0 = time.perf_counter()
            compress.quantize(model, calib, activations=c)
            times.append(time.perf_counter() - t0)
        print(f"   {name:<15} " + " ".join(f"{t:10.3f}" for t in times))
    print()


def integer_table(models, calib, x) -> None:
    print(f"3. Integer-only inference on {len(x)} images (ms per batch; int8 codes compared with the simulation)")
    print(f"   {'model':<15} {'fp32 eager':>10} {'simulation':>10} {'int-only':>9} {'int/fp32':>9} {'bit-exact':>9}")
    for name, model in models.items():
        q = compress.quantize(model, calib, activations="kl")
        f = aisys.compile(q, x, passes=["fold_quantization", "dce"], backend="reference")

        def best(fn, k=3):
            fn()
            ts = []
            for _ in range(k):
                t0 = time.perf_counter()
                fn()
                ts.append(time.perf_counter() - t0)
            return 1e3 * min(ts)
        with aisys.no_grad():
            t32 = best(lambda: model(x))
            tsim = best(lambda: q(x))
        tint = best(lambda: f(x))
        exact = np.array_equal(f(x).numpy(), q(x).numpy())
        print(f"   {name:<15} {t32:10.2f} {tsim:10.2f} {tint:9.2f} {tint / t32:8.2f}x {str(exact):>9}")
    print()


def pruning_table(models, train, test, quick: bool) -> None:
    print("4. Pruning LeNet (target: half the conv channels within 1 point and >= 1.6x fewer cycles; "
          "90% unstructured: the same cycles)")
    model = models["LeNet 16/32"]
    x = test[0][:32]
    dense_chip = chip.preset("scalesim32").with_datapath(4)
    base = accuracy(model, [test])
    slim = copy.deepcopy(model)
    compress.prune(slim, 0.5, structured=True, layers=nn.Conv2d, example=x[:4])
    aisys.manual_seed(0)
    train_classifier(slim, train, epochs=2 if quick else 4, lr=1e-3, progress=False,
                     scheduler=lambda opt: optim.CosineAnnealingLR(opt, 2 if quick else 4))    # as the test does
    sparse = copy.deepcopy(model)
    p = compress.prune(sparse, 0.9)
    train_classifier(sparse, train, epochs=2 if quick else 4, lr=1e-3, progress=False,
                     optimizer=p.enforce(optim.Adam(sparse.parameters(), lr=1e-3)))
    runs = chip.compare_graphs({"dense": aisys.trace(model, x), "half the conv channels": aisys.trace(slim, x),
                                "90% unstructured": aisys.trace(sparse, x)}, dense_chip)
    print(f"   {'version':<24} {'accuracy':>8} {'cycles':>10} {'fewer cycles':>12}")
    for name, m in (("dense", model), ("half the conv channels", slim), ("90% unstructured", sparse)):
        r = runs.run(name)
        print(f"   {name:<24} {100 * accuracy(m, [test]):8.2f} {r.cycles:>10,} {runs.speedup(name):11.2f}x")
    print(f"   (fp32 LeNet, batch 32, on {dense_chip.name}; baseline accuracy {100 * base:.2f})\n")


def payoff_table(models, calib, x) -> None:
    print("5. Chip payoff: fp32 on the fp32-equivalent preset vs int8 (same chip, packed) and int8 (original)")
    print(f"   implied by the energy table: MAC {mac_pj(4):.1f} pJ fp32 / {mac_pj(1):.1f} pJ int8 = "
          f"{mac_pj(4) / mac_pj(1):.1f}x; by the datapath: 4x fewer bytes, 4 int8 MACs per 32-bit PE")
    print(f"   {'model':<15} {'preset':<11} {'int8 same chip: cycles':>23} {'energy':>7} {'bytes':>6} | "
          f"{'int8 original: cycles':>22} {'energy':>7} {'MAC energy':>10}")
    for name, model in models.items():
        q = compress.quantize(model, calib, activations="kl")
        g_int = aisys.compile(q, x, passes=["fold_quantization", "dce"], backend="reference").graph
        g32 = aisys.trace(model, x)
        for base in ("tpu_v1", "scalesim32", "davinci"):
            wide = chip.preset(base).with_datapath(4)
            runs = chip.compare_graphs({"fp32": (g32, wide), "same": (g_int, wide), "orig": (g_int, base)})
            b, o = runs.baseline, runs.run("orig")
            print(f"   {name:<15} {base:<11} {runs.speedup('same'):22.2f}x {runs.energy_ratio('same'):6.2f}x "
                  f"{b.dram_bytes / runs.run('same').dram_bytes:5.2f}x | {runs.speedup('orig'):21.2f}x "
                  f"{runs.energy_ratio('orig'):6.2f}x {b.energy.parts_pj['MAC'] / o.energy.parts_pj['MAC']:9.2f}x")
    print(f"   (batch {len(x)}; 'int8 original' runs on the preset's own datapath: 1 byte on tpu_v1 and "
          f"scalesim32, 2 on davinci, where int8 packs 2 MACs per PE)\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer epochs (a smoke run)")
    args = ap.parse_args()
    print(f"aisys compression benchmarks — numpy {np.__version__}, {platform.processor() or platform.machine()}, "
          f"one thread\n")
    models, train = trained_models(args.quick)
    calib = [b for _, b in zip(range(4), DataLoader(digits("train"), 128, shuffle=True, generator=1))]
    test = next(iter(DataLoader(digits("test"), 360)))
    accuracy_table(models, train, calib, [test], args.quick)
    calibration_table(models, calib)
    integer_table(models, calib, test[0])
    pruning_table(models, train, test, args.quick)
    payoff_table(models, calib, test[0][:128])


if __name__ == "__main__":
    main()
