"""PyTorch reference IWAE for the DeepDensity IWAE benchmark (same architecture, init, optimiser, batch and epochs).

Burda et al. architecture 1: 784-200-200-50 (tanh) encoder to a diagonal Gaussian, 50-200-200-784 decoder to Bernoulli
logits; Glorot-uniform weights, zero biases, decoder output bias = logit of the training pixel means; Adam; k-sample
bound; no gradient clipping. Prints "KEY value" lines.
"""
import argparse, math, time
import peer_setup  # threads and BLAS report; must precede numpy/torch
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--train"); p.add_argument("--test")
p.add_argument("--dim", type=int, default=784)
p.add_argument("--k", type=int, default=5)
p.add_argument("--epochs", type=int, default=10)
p.add_argument("--batch", type=int, default=100)
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--eval-k", type=int, default=5000)
p.add_argument("--hidden", type=int, default=200)
p.add_argument("--latent", type=int, default=50)
p.add_argument("--seed", type=int, default=1)
a = p.parse_args()
torch.set_num_threads(peer_setup.threads())
# Adam moments of rarely-active pixels decay into subnormal floats, which slow x86 arithmetic ~10x; flush them (standard CPU setting).
torch.set_flush_denormal(True)
torch.manual_seed(a.seed)
D, H, Z = a.dim, a.hidden, a.latent
train = torch.from_numpy(np.fromfile(a.train, dtype=np.float32).reshape(-1, D))
test = torch.from_numpy(np.fromfile(a.test, dtype=np.float32).reshape(-1, D))
LOG2PI = math.log(2 * math.pi)

enc = nn.Sequential(nn.Linear(D, H), nn.Tanh(), nn.Linear(H, H), nn.Tanh(), nn.Linear(H, 2 * Z))
dec = nn.Sequential(nn.Linear(Z, H), nn.Tanh(), nn.Linear(H, H), nn.Tanh(), nn.Linear(H, D))
for m in list(enc) + list(dec):
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight); nn.init.zeros_(m.bias)
with torch.no_grad():
    pm = train.mean(0).clamp(1e-3, 1 - 1e-3)
    dec[-1].bias.copy_(torch.log(pm / (1 - pm)))
params = list(enc.parameters()) + list(dec.parameters())
opt = torch.optim.Adam(params, lr=a.lr, betas=(0.9, 0.999), eps=1e-8)

def log_weights(x, k):
    h = enc(x)
    mu, ls = h[:, :Z], h[:, Z:]
    eps = torch.randn(x.shape[0], k, Z)
    z = mu.unsqueeze(1) + torch.exp(ls).unsqueeze(1) * eps
    log_q = (-0.5 * eps * eps - ls.unsqueeze(1) - 0.5 * LOG2PI).sum(-1)
    log_pz = (-0.5 * z * z - 0.5 * LOG2PI).sum(-1)
    logits = dec(z.reshape(-1, Z)).reshape(x.shape[0], k, D)
    log_px = -F.binary_cross_entropy_with_logits(logits, x.unsqueeze(1).expand(-1, k, -1), reduction="none").sum(-1)
    return log_px + log_pz - log_q

n = train.shape[0]
train_time = 0.0
train_cpu = 0.0
last_bound = float("nan")
for epoch in range(a.epochs):
    t0 = time.perf_counter()
    c0 = time.process_time()
    perm = torch.randperm(n)
    total = 0.0
    for s in range(0, n, a.batch):
        x = train[perm[s:s + a.batch]]
        lw = log_weights(x, a.k)
        bound = torch.logsumexp(lw, 1) - math.log(a.k)
        loss = -bound.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += float(bound.sum())
    dt = time.perf_counter() - t0
    train_time += dt
    train_cpu += time.process_time() - c0
    last_bound = total / n
    print(f"EPOCH {epoch + 1} bound {last_bound:.4f} {n / dt:.0f} ex/s", flush=True)

t0 = time.perf_counter()
lls, ses = [], []
chunk = 500
with torch.no_grad():
    for r in range(test.shape[0]):
        x = test[r:r + 1]
        parts = []
        done = 0
        while done < a.eval_k:
            kk = min(chunk, a.eval_k - done)
            parts.append(log_weights(x, kk)[0].double())
            done += kk
        lw = torch.cat(parts)
        mx = lw.max()
        w = torch.exp(lw - mx)
        mean = w.mean()
        lls.append(float(mx + torch.log(mean)))
        ses.append(float(w.std() / (math.sqrt(a.eval_k) * mean)) if a.eval_k > 1 else 0.0)
eval_time = time.perf_counter() - t0
print(f"TRAIN_EXS {a.epochs * n / train_time:.1f}")
print(f"TRAIN_SECONDS {train_time:.3f}")
print(f"TRAIN_CPU_SECONDS {train_cpu:.3f}")
print(f"TRAIN_BOUND {last_bound:.4f}")
print(f"TEST_LL {float(np.mean(lls)):.4f}")
print(f"TEST_SE {float(np.mean(ses)):.4f}")
print(f"EVAL_SECONDS {eval_time:.3f}")
