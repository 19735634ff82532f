"""scikit-learn GaussianMixture peer (full covariances, the number of components chosen on validation rows).

usage: gmm_sklearn.py TRAIN.f32 VALID.f32 TEST.f32 D MAX_K SEED
Prints "KEY value" lines: K (chosen), VALID, TEST (mean log-density in nats per row), and VALID_K<k> for every k tried.
"""
import sys
import peer_setup  # noqa: F401  (BLAS report; must precede numpy/sklearn)
import numpy as np
from sklearn.mixture import GaussianMixture

train_path, valid_path, test_path, d, max_k, seed = sys.argv[1:7]
d, max_k, seed = int(d), int(max_k), int(seed)
read = lambda p: np.fromfile(p, dtype=np.float32).reshape(-1, d).astype(np.float64)
X, V, T = read(train_path), read(valid_path), read(test_path)
best = None
for k in range(1, max_k + 1):
    g = GaussianMixture(n_components=k, covariance_type="full", n_init=3, random_state=seed, reg_covar=1e-6).fit(X)
    v = g.score(V)
    print(f"VALID_K{k}", v)
    if best is None or v > best[0]:
        best = (v, k, g)
v, k, g = best
print("K", k)
print("VALID", v)
print("TEST", g.score(T))
