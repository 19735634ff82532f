"""scikit-learn BernoulliRBM peer (PCD-1, no momentum / weight decay) for the RBM benchmark.

usage: rbm_sklearn.py TRAIN.f32 N D HIDDEN BATCH LR EPOCHS SEED OUT_PREFIX
Prints "KEY value" lines: TRAIN_SECONDS, TRAIN_CPU_SECONDS (all threads), EXAMPLES_PER_SECOND. Writes OUT_PREFIX.{W,b,c}.f32 (W as D×H row-major).
"""
import sys, time
import peer_setup  # noqa: F401  (BLAS report; must precede numpy/sklearn)
import numpy as np
from sklearn.neural_network import BernoulliRBM

path, n, d, hidden, batch, lr, epochs, seed, out = sys.argv[1:10]
n, d, hidden, batch, epochs, seed = int(n), int(d), int(hidden), int(batch), int(epochs), int(seed)
X = np.fromfile(path, dtype=np.float32, count=n * d).reshape(n, d)
rbm = BernoulliRBM(n_components=hidden, learning_rate=float(lr), batch_size=batch, n_iter=epochs,
                   random_state=seed, verbose=0)
t = time.perf_counter()
cpu = time.process_time()
rbm.fit(X)
seconds = time.perf_counter() - t
cpu = time.process_time() - cpu
print("DTYPE", 32 if rbm.components_.dtype == np.float32 else 64)
print("TRAIN_SECONDS", seconds)
print("TRAIN_CPU_SECONDS", cpu)
print("EXAMPLES_PER_SECOND", n * epochs / seconds)
np.ascontiguousarray(rbm.components_.T, dtype=np.float32).tofile(out + ".W.f32")
rbm.intercept_visible_.astype(np.float32).tofile(out + ".b.f32")
rbm.intercept_hidden_.astype(np.float32).tofile(out + ".c.f32")
