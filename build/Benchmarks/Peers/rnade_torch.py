"""PyTorch reference RNADE for the `rnade` benchmark (same model and protocol as RnadeModel.Fit).

usage: rnade_torch.py DIR D H K MAX_EPOCHS BATCH LR SEED [CLIP [SIGMA_SCALED [SECONDS [PATIENCE [THREADS]]]]]
  DIR holds rnade-train.f32 / rnade-valid.f32 / rnade-test.f32 (raw float32 rows of D columns, written by Peer.WriteMatrix).
  CLIP: gradient-norm clipping (0 = none, the default); SIGMA_SCALED: 1 = Algorithm 2's sigma-scaled mean gradient,
  0 = the plain autograd gradient (default); SECONDS: wall-time budget from the start of training (0 = no limit): as the
  library's StopToken, the epoch in progress at the budget is discarded and the best epoch on validation so far kept; PATIENCE: early stopping on the validation log-likelihood (0 = none); THREADS: torch threads,
  0 = time a few steps with 1 and with 2 threads and keep the faster (the default; one budgeted run instead of the
  launcher's two full runs of Peer.RunTorchBest).
Model: RNADE with ReLU hidden units and K-component Gaussian mixtures, inputs standardised with the training mean and
(population) standard deviation, log-likelihood reported in raw-data units (Jacobian added). Initialisation as
RnadeNetwork.Initialize: W ~ N(0, 1/sqrt(D)), c = 0, rho = 1, V ~ N(0, 0.01), alpha biases 0, mean biases at the
(i+1/2)/K quantiles of each standardised column, log-sigma biases log(1/sqrt(K)). Adam. The best parameters on the
validation set are restored before the test set is scored (as the training loop does).
Vectorised over the batch and over d: all a_d at once by a cumulative sum over d, all outputs by one batched matmul.
Prints KEY value lines, and one "CURVE epoch seconds validation_ll" line per epoch (seconds since training started,
validation included).
"""
import copy, math, os, sys, time
# Sleep instead of spin while waiting at OpenMP barriers: on a shared 2-core machine spinning threads starve each
# other (a 20x slowdown under load), which would flatter the comparison. (The launcher sets it too.)
os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
import peer_setup  # BLAS/thread report (PEER_INFO); must precede numpy/torch
import numpy as np
import torch

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class ScaleGrad(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by `scale` (sigma): the preconditioned mean update."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(scale)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        (scale,) = ctx.saved_tensors
        return g * scale, None


class Rnade(torch.nn.Module):
    def __init__(self, d, h, k, quantiles, gen):
        super().__init__()
        self.d, self.h, self.k = d, h, k
        self.W = torch.nn.Parameter(torch.randn(d - 1, h, generator=gen) / math.sqrt(d))
        self.c = torch.nn.Parameter(torch.zeros(h))
        self.rho = torch.nn.Parameter(torch.ones(d))
        self.V = torch.nn.Parameter(torch.randn(d, h, 3 * k, generator=gen) * 0.01)
        b = torch.zeros(d, 3 * k)
        b[:, k:2 * k] = torch.as_tensor(quantiles)
        b[:, 2 * k:] = math.log(1 / math.sqrt(k))
        self.b = torch.nn.Parameter(b)

    def log_prob(self, x, scale_mean_grad=False):
        # x: (B, D) standardised. Work in (D, B, .) layout so the per-d products are one bmm.
        xt = x.t()                                              # (D, B)
        xw = xt[:-1, :, None] * self.W[:, None, :]              # (D-1, B, H): x_j W_j
        a = torch.cumsum(xw, dim=0)                             # a_{d+1} - c
        a = torch.cat([torch.zeros_like(a[:1]), a], dim=0) + self.c  # (D, B, H): a_d = c + sum_{j<d} x_j W_j
        hid = torch.relu(a * self.rho[:, None, None])
        z = torch.baddbmm(self.b[:, None, :], hid, self.V)     # (D, B, 3K)
        k = self.k
        za, zm, zs = z[..., :k], z[..., k:2 * k], z[..., 2 * k:]
        if scale_mean_grad and torch.is_grad_enabled():
            zm = ScaleGrad.apply(zm, torch.exp(zs).detach())
        log_alpha = torch.log_softmax(za, dim=-1)
        u = (xt[..., None] - zm) * torch.exp(-zs)
        lp = log_alpha - 0.5 * u * u - zs - HALF_LOG_2PI
        return torch.logsumexp(lp, dim=-1).sum(0)              # (B,)


def main():
    folder, d, h, k, epochs, batch, lr, seed = sys.argv[1:9]
    extra = sys.argv[9:] + [None] * 5
    clip = float(extra[0]) if extra[0] is not None else 0.0
    sigma_scaled = extra[1] is not None and int(extra[1]) != 0
    budget = float(extra[2]) if extra[2] is not None else 0.0
    patience = int(extra[3]) if extra[3] is not None else 0
    threads = int(extra[4]) if extra[4] is not None else 0
    d, h, k, epochs, batch, lr, seed = int(d), int(h), int(k), int(epochs), int(batch), float(lr), int(seed)
    load = lambda name: torch.from_numpy(np.fromfile(f"{folder}/rnade-{name}.f32", dtype=np.float32).reshape(-1, d))
    train_raw, valid_raw, test_raw = load("train"), load("valid"), load("test")
    mean = train_raw.double().mean(0)
    sd = train_raw.double().std(0, unbiased=False)
    sd = torch.where(sd > 1e-6, sd, torch.ones_like(sd))
    log_jacobian = float(-torch.log(sd.float()).double().sum())
    std = lambda t: ((t - mean.float()) / sd.float()).contiguous()
    train, valid, test = std(train_raw), std(valid_raw), std(test_raw)
    n = train.shape[0]
    sorted_cols = torch.sort(train, dim=0).values
    idx = [min(n - 1, int((i + 0.5) / k * n)) for i in range(k)]
    quantiles = sorted_cols[idx, :].t().contiguous()           # (D, K)

    def step(model, opt, xb):
        opt.zero_grad(set_to_none=True)
        logp = model.log_prob(xb, sigma_scaled)
        (-logp.mean()).backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        return logp

    if threads <= 0:
        # Best thread count for this machine and model size: time a few steps on a throw-away copy of the model.
        rates = {}
        for t in (1, 2):
            torch.set_num_threads(t)
            probe = Rnade(d, h, k, quantiles, torch.Generator().manual_seed(seed))
            probe_opt = torch.optim.Adam(probe.parameters(), lr=lr)
            for _ in range(3):
                step(probe, probe_opt, train[:batch])
            t0 = time.perf_counter()
            for i in range(20):
                step(probe, probe_opt, train[i * batch % n:][:batch])
            rates[t] = 20 / (time.perf_counter() - t0)
        threads = max(rates, key=rates.get)
        print(f"threads: {rates} steps/s -> {threads}", file=sys.stderr, flush=True)
    torch.set_num_threads(threads)

    gen = torch.Generator().manual_seed(seed)
    model = Rnade(d, h, k, quantiles, gen)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)

    def evaluate(data):
        with torch.no_grad():
            total = 0.0
            for s in range(0, data.shape[0], 1000):
                total += float(model.log_prob(data[s:s + 1000]).double().sum())
        return total / data.shape[0] + log_jacobian

    train_seconds = 0.0
    best_valid, best_state, best_epoch, since_best = -math.inf, None, 0, 0
    clock = time.perf_counter()
    epoch = 0
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(n, generator=gen)
        t0 = time.perf_counter()
        total = 0.0
        out_of_time = False
        for s in range(0, n, batch):
            if budget > 0 and time.perf_counter() - clock >= budget:
                out_of_time = True
                break
            logp = step(model, opt, train[perm[s:s + batch]])
            total += float(logp.detach().double().sum())
        if out_of_time:
            epoch -= 1
            break
        dt = time.perf_counter() - t0
        train_seconds += dt
        valid_ll = evaluate(valid)
        elapsed = time.perf_counter() - clock
        print(f"CURVE {epoch} {elapsed:.3f} {valid_ll:.6f}", flush=True)
        print(f"epoch {epoch} train {total / n + log_jacobian:.4f} valid {valid_ll:.4f} {n / dt:.0f} ex/s", file=sys.stderr, flush=True)
        if valid_ll > best_valid:
            best_valid, best_state, best_epoch, since_best = valid_ll, copy.deepcopy(model.state_dict()), epoch, 0
        else:
            since_best += 1
            if patience > 0 and since_best >= patience:
                break
    fit_seconds = time.perf_counter() - clock
    if best_state is not None:
        model.load_state_dict(best_state)

    test_ll = evaluate(test)
    # Scoring throughput: the whole test set in blocks of 1000 rows, no autograd; median of 3.
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        evaluate(test)
        times.append(time.perf_counter() - t0)
    score_seconds = sorted(times)[1]
    print(f"TEST_LL {test_ll:.6f}")
    print(f"VALID_LL {best_valid:.6f}")
    print(f"BEST_EPOCH {best_epoch}")
    print(f"EPOCHS {epoch}")
    print(f"FIT_SECONDS {fit_seconds:.3f}")
    print(f"THREADS {threads}")
    print(f"TRAIN_EXAMPLES_PER_SECOND {epoch * n / max(train_seconds, 1e-9):.3f}")
    print(f"SCORE_ROWS_PER_SECOND {test.shape[0] / score_seconds:.3f}")


if __name__ == "__main__":
    main()
