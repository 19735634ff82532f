"""OpenBLAS SGEMM peer for the `gemm` benchmark.

usage: gemm_numpy.py SHAPES SECONDS
       gemm_numpy.py SHAPES --serve
  SHAPES: comma-separated m:n:k:TA:TB (TA/TB in {N,T}); the stored operands are row-major as in Gemm.Multiply
  (A is m×k, or k×m when TA=T; B is k×n, or n×k when TB=T). Prints "GFLOPS_<index> value" per shape.
  --serve (the benchmark's --paired mode): prepares every shape, prints "READY", then for each stdin line
  "<index> <calls>" runs that many products of shape <index> and prints their wall time in seconds, so the caller
  can alternate its own timings with these seconds apart (paired rounds: a noisy VM's drift hits both sides).
numpy passes transposed views to BLAS with the transpose flag (no copy), so this measures sgemm itself.
"""
import sys, time
import peer_setup  # noqa: F401  (BLAS report; must precede numpy)
import numpy as np


def operands(spec, rng):
    m, n, k, ta, tb = spec.split(":")
    m, n, k = int(m), int(n), int(k)
    a = rng.standard_normal((k, m) if ta == "T" else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if tb == "T" else (k, n), dtype=np.float32)
    return (a.T if ta == "T" else a), (b.T if tb == "T" else b), np.empty((m, n), dtype=np.float32)


def serve(shapes):
    rng = np.random.default_rng(1)
    prepared = [operands(s, rng) for s in shapes]
    for opa, opb, c in prepared:
        np.matmul(opa, opb, out=c)
    print("READY", flush=True)
    for line in sys.stdin:
        idx, calls = (int(x) for x in line.split())
        opa, opb, c = prepared[idx]
        t0 = time.perf_counter()
        for _ in range(calls):
            np.matmul(opa, opb, out=c)
        print(f"{time.perf_counter() - t0:.9f}", flush=True)


def main():
    shapes = sys.argv[1].split(",")
    if sys.argv[2] == "--serve":
        serve(shapes)
        return
    budget = float(sys.argv[2])
    rng = np.random.default_rng(1)
    for idx, s in enumerate(shapes):
        opa, opb, c = operands(s, rng)
        m, n, k = opa.shape[0], opb.shape[1], opa.shape[1]
        np.matmul(opa, opb, out=c)
        # Calibrate repetitions so one sample takes ~budget/5 seconds.
        t0 = time.perf_counter(); reps = 1
        while True:
            t0 = time.perf_counter()
            for _ in range(reps):
                np.matmul(opa, opb, out=c)
            dt = time.perf_counter() - t0
            if dt > budget / 10 or reps > 1 << 20:
                break
            reps *= 2
        samples = []
        for _ in range(7):
            t0 = time.perf_counter()
            for _ in range(reps):
                np.matmul(opa, opb, out=c)
            samples.append((time.perf_counter() - t0) / reps)
        t = min(samples)  # best of 7, as in GemmBenchmark: the stable estimate on a shared machine
        print(f"GFLOPS_{idx} {2.0 * m * n * k / t / 1e9:.3f}", flush=True)


if __name__ == "__main__":
    main()
