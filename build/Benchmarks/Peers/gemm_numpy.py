"""OpenBLAS SGEMM peer for the `gemm` benchmark.

usage: gemm_numpy.py SHAPES SECONDS
  SHAPES: comma-separated m:n:k:TA:TB (TA/TB in {N,T}); the stored operands are row-major as in Gemm.Multiply
  (A is m×k, or k×m when TA=T; B is k×n, or n×k when TB=T). Prints "GFLOPS_<index> value" per shape.
numpy passes transposed views to BLAS with the transpose flag (no copy), so this measures sgemm itself.
"""
import sys, time
import peer_setup  # noqa: F401  (BLAS report; must precede numpy)
import numpy as np


def main():
    shapes = sys.argv[1].split(",")
    budget = float(sys.argv[2])
    rng = np.random.default_rng(1)
    for idx, s in enumerate(shapes):
        m, n, k, ta, tb = s.split(":")
        m, n, k = int(m), int(n), int(k)
        a = rng.standard_normal((k, m) if ta == "T" else (m, k), dtype=np.float32)
        b = rng.standard_normal((n, k) if tb == "T" else (k, n), dtype=np.float32)
        opa = a.T if ta == "T" else a
        opb = b.T if tb == "T" else b
        c = np.empty((m, n), dtype=np.float32)
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
