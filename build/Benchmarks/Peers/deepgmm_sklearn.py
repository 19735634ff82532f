"""scikit-learn peer for the Deep GMM benchmark: full-covariance GaussianMixture, component count and covariance ridge
chosen on validation.

usage: deepgmm_sklearn.py TRAIN.f32 VALID.f32 TEST.f32 DIM GRID(comma list) MAX_ITER SEED [RIDGES(comma list) [N_INIT]]
Prints "KEY value" lines: per (K, ridge), keyed K<k>_R<index of the ridge in RIDGES>, the validation/test log-likelihood, iterations and seconds per EM iteration,
the seconds of one score_samples call on the test rows (the best of the calls made in at least a second),
then the chosen pair's figures (BEST_*).

The ridge r is the analogue of our CovarianceRidge: r * var(column) is added to each diagonal entry of every component
covariance. scikit-learn's reg_covar adds one absolute value to all columns, so the model is fitted on columns divided by
their training standard deviation with reg_covar = r, and the log-likelihoods are mapped back to data units (minus the
sum of log standard deviations) -- exactly r * var(column) in data units.
"""
import sys
import time

import peer_setup  # noqa: F401  (BLAS report; must precede numpy/sklearn)
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


def timed(f):
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def main():
    train_path, valid_path, test_path, dim, grid, max_iter, seed = sys.argv[1:8]
    ridges = [float(v) for v in sys.argv[8].split(",")] if len(sys.argv) > 8 else [1e-6]
    n_init = int(sys.argv[9]) if len(sys.argv) > 9 else 1
    dim, max_iter, seed = int(dim), int(max_iter), int(seed)
    xtr, xva, xte = load(train_path, dim), load(valid_path, dim), load(test_path, dim)
    scale = xtr.std(axis=0)
    scale[~(scale > 0)] = 1.0
    log_jacobian = -np.log(scale).sum()
    xtr, xva, xte = xtr / scale, xva / scale, xte / scale
    best = None
    for ridge_index, ridge in enumerate(ridges):
        for k in [int(v) for v in grid.split(",")]:
            gm = GaussianMixture(n_components=k, covariance_type="full", max_iter=max_iter, tol=1e-3, reg_covar=ridge,
                                 n_init=n_init, random_state=seed)
            t0 = time.perf_counter()
            gm.fit(xtr)
            fit_s = time.perf_counter() - t0
            valid_ll = gm.score(xva) + log_jacobian
            test_ll = gm.score(xte) + log_jacobian
            iter_s = em_iteration_seconds(gm, xtr)
            gm.score_samples(xte)
            score_times = []
            while len(score_times) < 3 or sum(score_times) < 1.0:
                score_times.append(timed(lambda: gm.score_samples(xte)))
            score_s = min(score_times)
            key = f"K{k}_R{ridge_index}"
            print(f"{key}_VALID {valid_ll:.6f}")
            print(f"{key}_TEST {test_ll:.6f}")
            print(f"{key}_ITERS {gm.n_iter_}")
            print(f"{key}_FIT_S {fit_s:.6f}")
            print(f"{key}_ITER_S {iter_s:.6f}")
            print(f"{key}_SCORE_S {score_s:.6f}")
            sys.stdout.flush()
            if best is None or valid_ll > best[2]:
                best = (k, ridge_index, valid_ll, test_ll, iter_s, gm.n_iter_, fit_s)
    k, ridge_index, valid_ll, test_ll, iter_s, iters, fit_s = best
    print(f"BEST_K {k}")
    print(f"BEST_RIDGE_INDEX {ridge_index}")
    print(f"BEST_VALID {valid_ll:.6f}")
    print(f"BEST_TEST {test_ll:.6f}")
    print(f"BEST_ITER_S {iter_s:.6f}")
    print(f"BEST_ITERS {iters}")
    print(f"BEST_FIT_S {fit_s:.6f}")


if __name__ == "__main__":
    main()
