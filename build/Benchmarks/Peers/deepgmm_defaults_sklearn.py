"""scikit-learn peer for the Deep GMM defaults study (deepgmm-defaults).

usage: deepgmm_defaults_sklearn.py dump NAME OUT.f32        NAME = wine | breast_cancer (scikit-learn's bundled copies of
                                                              the UCI tables; no download). Prints ROWS and COLS.
       deepgmm_defaults_sklearn.py fit TRAIN.f32 VALID.f32 TEST.f32 DIM KGRID SEED
Fit: GaussianMixture for every K in KGRID and covariance type (full, tied, diag, spherical), the pair chosen on the
validation rows, the test figure reported (BEST_K, BEST_COV, BEST_VALID, BEST_TEST). As in deepgmm_sklearn.py the
columns are divided by their training standard deviation with reg_covar = 1e-6, i.e. 1e-6 * var(column) in data units,
the analogue of the Deep GMM's default CovarianceRidge, and the log-likelihoods are mapped back to data units.
"""
import sys

import peer_setup  # noqa: F401  (BLAS report; must precede numpy/sklearn)
import numpy as np
from sklearn.mixture import GaussianMixture


def load(path, dim):
    return np.fromfile(path, dtype=np.float32).reshape(-1, dim).astype(np.float64)


def dump(name, out):
    from sklearn import datasets
    x = {"wine": datasets.load_wine, "breast_cancer": datasets.load_breast_cancer}[name]().data
    x.astype(np.float32).tofile(out)
    print(f"ROWS {x.shape[0]}")
    print(f"COLS {x.shape[1]}")


def fit(train_path, valid_path, test_path, dim, grid, seed):
    dim, seed = int(dim), int(seed)
    xtr, xva, xte = load(train_path, dim), load(valid_path, dim), load(test_path, dim)
    scale = xtr.std(axis=0)
    scale[~(scale > 0)] = 1.0
    log_jacobian = -np.log(scale).sum()
    xtr, xva, xte = xtr / scale, xva / scale, xte / scale
    best = None
    for cov in ["full", "tied", "diag", "spherical"]:
        for k in [int(v) for v in grid.split(",")]:
            if k > len(xtr):
                continue
            gm = GaussianMixture(n_components=k, covariance_type=cov, max_iter=200, reg_covar=1e-6, n_init=1,
                                 random_state=seed)
            gm.fit(xtr)
            valid_ll = gm.score(xva) + log_jacobian
            test_ll = gm.score(xte) + log_jacobian
            print(f"K{k}_{cov.upper()}_VALID {valid_ll:.6f}")
            print(f"K{k}_{cov.upper()}_TEST {test_ll:.6f}")
            if best is None or valid_ll > best[2]:
                best = (k, cov, valid_ll, test_ll)
    k, cov, valid_ll, test_ll = best
    print(f"BEST_K {k}")
    print(f"BEST_COV {['full', 'tied', 'diag', 'spherical'].index(cov)}")
    print(f"BEST_VALID {valid_ll:.6f}")
    print(f"BEST_TEST {test_ll:.6f}")


if __name__ == "__main__":
    if sys.argv[1] == "dump":
        dump(sys.argv[2], sys.argv[3])
    else:
        fit(*sys.argv[2:8])
