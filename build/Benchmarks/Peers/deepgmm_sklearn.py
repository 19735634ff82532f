"""scikit-learn peer for the Deep GMM benchmark: full-covariance GaussianMixture, component count chosen on validation.

usage: deepgmm_sklearn.py TRAIN.f32 VALID.f32 TEST.f32 DIM GRID(comma list) MAX_ITER SEED
Prints "KEY value" lines: per K the validation/test log-likelihood, iterations and seconds per EM iteration, then the
chosen K's figures (BEST_*).
"""
import sys
import time

import numpy as np
from sklearn.mixture import GaussianMixture


def load(path, dim):
    return np.fromfile(path, dtype=np.float32).reshape(-1, dim).astype(np.float64)


def em_iteration_seconds(gm, x, repeats=3):
    """Median wall time of one E-step + M-step at the fitted parameters (excludes k-means initialisation)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _, log_resp = gm._e_step(x)
        gm._m_step(x, log_resp)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def main():
    train_path, valid_path, test_path, dim, grid, max_iter, seed = sys.argv[1:8]
    dim, max_iter, seed = int(dim), int(max_iter), int(seed)
    xtr, xva, xte = load(train_path, dim), load(valid_path, dim), load(test_path, dim)
    best = None
    for k in [int(v) for v in grid.split(",")]:
        gm = GaussianMixture(n_components=k, covariance_type="full", max_iter=max_iter, tol=1e-3, random_state=seed)
        t0 = time.perf_counter()
        gm.fit(xtr)
        fit_s = time.perf_counter() - t0
        valid_ll = gm.score(xva)
        test_ll = gm.score(xte)
        iter_s = em_iteration_seconds(gm, xtr)
        print(f"K{k}_VALID {valid_ll:.6f}")
        print(f"K{k}_TEST {test_ll:.6f}")
        print(f"K{k}_ITERS {gm.n_iter_}")
        print(f"K{k}_FIT_S {fit_s:.6f}")
        print(f"K{k}_ITER_S {iter_s:.6f}")
        sys.stdout.flush()
        if best is None or valid_ll > best[1]:
            best = (k, valid_ll, test_ll, iter_s, gm.n_iter_, fit_s)
    k, valid_ll, test_ll, iter_s, iters, fit_s = best
    print(f"BEST_K {k}")
    print(f"BEST_VALID {valid_ll:.6f}")
    print(f"BEST_TEST {test_ll:.6f}")
    print(f"BEST_ITER_S {iter_s:.6f}")
    print(f"BEST_ITERS {iters}")
    print(f"BEST_FIT_S {fit_s:.6f}")


if __name__ == "__main__":
    main()
