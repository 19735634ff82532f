"""PyTorch reference RNN-RNADE for the `rnnrnade` benchmark (same configuration as RnnRnadeModel.Fit).

usage: rnnrnade_torch.py DIR D T H K R EPOCHS BATCH LR PATIENCE SEED THREADS [check]
  DIR holds rnnrnade-train.f32 / rnnrnade-valid.f32 / rnnrnade-test.f32: raw float32 sequences of T frames of D values
  (N x T x D, written by the benchmark after dequantisation), so both sides see the same numbers.
Model: the recurrent state h_t = sigmoid(x_t W_in + h_{t-1} W_rec + b_rec), h_{-1} = h0 (learned), shifts the output
biases of frame t's RNADE by h_{t-1} W_out (alpha, mu and log-sigma heads of every dimension); RNADE with sigmoid hidden
units and K-component Gaussian mixtures. Frames standardised with the training frames' mean and population standard
deviation, log-likelihood per frame in raw units (Jacobian added). Initialisation as RnnRnadeModel.Fit: RNADE as
RnadeNetwork.Initialize, W_in ~ N(0, 1/sqrt(D)), W_rec ~ N(0, 1/sqrt(R)), b_rec = h0 = W_out = 0. Adam on the mean
negative log-likelihood per frame, exact gradients, clipping at norm 10, early stopping on the validation
log-likelihood per frame with the best parameters restored.
Implementation: the recurrence is a Python loop over the T steps (it does not depend on the RNADE outputs); the RNADE
then runs on all B*T frames at once (vectorised over frames and dimensions as in rnade_torch.py).
Prints KEY value lines. With "check", trains nothing: perturbs the initial parameters (so every path, conditioning
included, carries gradient), writes them, the standardised first BATCH training sequences and the gradient of the
mean negative log-likelihood per frame on them, and the parameters after five optimiser steps (Adam at LR, clipping)
on that minibatch to DIR/check-*.f32, and prints CHECK_LL (mean per frame): the
benchmark's --check-peer recomputes both with RnnRnadeNetwork to show the two sides implement the same model.
"""
import copy, math, os, sys, time
# Sleep instead of spin at OpenMP barriers: on a shared machine spinning threads starve each other.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import peer_setup  # noqa: F401  (BLAS report; must precede numpy/torch)
import numpy as np
import torch

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class RnnRnade(torch.nn.Module):
    def __init__(self, d, h, k, r, quantiles, gen):
        super().__init__()
        self.d, self.h, self.k, self.r = d, h, k, r
        self.W = torch.nn.Parameter(torch.randn(d - 1, h, generator=gen) / math.sqrt(d))
        self.c = torch.nn.Parameter(torch.zeros(h))
        self.rho = torch.nn.Parameter(torch.ones(d))
        self.V = torch.nn.Parameter(torch.randn(d, h, 3 * k, generator=gen) * 0.01)
        b = torch.zeros(d, 3 * k)
        b[:, k:2 * k] = torch.as_tensor(quantiles)
        b[:, 2 * k:] = math.log(1 / math.sqrt(k))
        self.b = torch.nn.Parameter(b)
        self.W_in = torch.nn.Parameter(torch.randn(d, r, generator=gen) / math.sqrt(d))
        self.W_rec = torch.nn.Parameter(torch.randn(r, r, generator=gen) / math.sqrt(r))
        self.b_rec = torch.nn.Parameter(torch.zeros(r))
        self.h0 = torch.nn.Parameter(torch.zeros(r))
        self.W_out = torch.nn.Parameter(torch.zeros(r, d * 3 * k))

    def frame_log_prob(self, x):
        """x: (B, T, D) standardised -> (B, T) log p(x_t | x_<t)."""
        bsz, steps, d = x.shape
        h = self.h0.expand(bsz, self.r)
        contexts = [h]
        for t in range(steps - 1):
            h = torch.sigmoid(torch.addmm(self.b_rec, x[:, t], self.W_in) + h @ self.W_rec)
            contexts.append(h)
        ctx = torch.stack(contexts, 1).reshape(bsz * steps, self.r)      # context of every frame
        bias = (ctx @ self.W_out).reshape(bsz * steps, d, 3 * self.k).transpose(0, 1)  # (D, N, 3K)
        xt = x.reshape(bsz * steps, d).t()                                  # (D, N)
        a = torch.cumsum(xt[:-1, :, None] * self.W[:, None, :], dim=0)
        a = torch.cat([torch.zeros_like(a[:1]), a], dim=0) + self.c         # (D, N, H)
        hid = torch.sigmoid(a * self.rho[:, None, None])
        z = torch.baddbmm(self.b[:, None, :] + bias, hid, self.V)          # (D, N, 3K)
        k = self.k
        za, zm, zs = z[..., :k], z[..., k:2 * k], z[..., 2 * k:]
        u = (xt[..., None] - zm) * torch.exp(-zs)
        lp = torch.log_softmax(za, dim=-1) - 0.5 * u * u - zs - HALF_LOG_2PI
        return torch.logsumexp(lp, dim=-1).sum(0).reshape(bsz, steps)


def main():
    folder, d, steps, h, k, r, epochs, batch, lr, patience, seed, threads = sys.argv[1:13]
    d, steps, h, k, r, epochs, batch, patience, seed, threads = map(int, (d, steps, h, k, r, epochs, batch, patience, seed, threads))
    lr = float(lr)
    torch.set_num_threads(threads)
    load = lambda name: torch.from_numpy(np.fromfile(f"{folder}/rnnrnade-{name}.f32", dtype=np.float32).reshape(-1, steps, d))
    train_raw, valid_raw, test_raw = load("train"), load("valid"), load("test")
    frames = train_raw.reshape(-1, d).double()
    mean, sd = frames.mean(0), frames.std(0, unbiased=False)
    sd = torch.where(sd > 1e-6, sd, torch.ones_like(sd))
    log_jacobian = float(-torch.log(sd.float()).double().sum())
    std = lambda t: ((t - mean.float()) / sd.float()).contiguous()
    train, valid, test = std(train_raw), std(valid_raw), std(test_raw)
    n = train.shape[0]
    flat = train.reshape(-1, d)
    sorted_cols = torch.sort(flat, dim=0).values
    idx = [min(flat.shape[0] - 1, int((i + 0.5) / k * flat.shape[0])) for i in range(k)]
    quantiles = sorted_cols[idx, :].t().contiguous()

    gen = torch.Generator().manual_seed(seed)
    model = RnnRnade(d, h, k, r, quantiles, gen)
    if len(sys.argv) > 13 and sys.argv[13] == "check":
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1 * torch.randn(p.shape, generator=gen))
        xb = train[:batch]
        loss = -model.frame_log_prob(xb).mean()
        loss.backward()
        dump = lambda name, t: t.detach().float().contiguous().numpy().tofile(f"{folder}/check-{name}.f32")
        dump("x", xb)
        for name, p in model.named_parameters():
            dump(name, p)
            dump("grad-" + name, p.grad)
        # Then a few optimiser steps (Adam at LR, clipping at norm 10) on the same minibatch: the parameters after them.
        opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)
        for _ in range(5):
            opt.zero_grad(set_to_none=True)
            (-model.frame_log_prob(xb).mean()).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
        for name, p in model.named_parameters():
            dump("stepped-" + name, p)
        print(f"CHECK_LL {-float(loss):.6f}")
        return
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)

    def evaluate(data):
        with torch.no_grad():
            return float(model.frame_log_prob(data).double().mean()) + log_jacobian

    train_seconds, best, best_state, best_epoch, since = 0.0, -math.inf, None, 0, 0
    epochs_run = 0
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(n, generator=gen)
        t0 = time.perf_counter()
        for s in range(0, n, batch):
            xb = train[perm[s:s + batch]]
            opt.zero_grad(set_to_none=True)
            loss = -model.frame_log_prob(xb).mean()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
        train_seconds += time.perf_counter() - t0
        epochs_run = epoch
        valid_ll = evaluate(valid)
        print(f"epoch {epoch} valid {valid_ll:.4f} {n / (time.perf_counter() - t0):.0f} seq/s", file=sys.stderr, flush=True)
        if valid_ll > best:
            best, best_state, best_epoch, since = valid_ll, copy.deepcopy(model.state_dict()), epoch, 0
        else:
            since += 1
            if patience > 0 and since >= patience:
                break
    model.load_state_dict(best_state)
    print(f"TRAIN_LL {evaluate(train):.6f}")
    print(f"TEST_LL {evaluate(test):.6f}")
    print(f"VALID_LL {best:.6f}")
    print(f"EPOCHS {epochs_run}")
    print(f"BEST_EPOCH {best_epoch}")
    print(f"TRAIN_SEQUENCES_PER_SECOND {epochs_run * n / train_seconds:.3f}")
    # Scoring throughput: the whole training set in one no-grad call, repeated for at least a second after a warm-up
    # call; the best repeat, as the C# side measures it.
    evaluate(train)
    best_s, total = math.inf, 0.0
    while total < 1.0:
        t0 = time.perf_counter()
        evaluate(train)
        s = time.perf_counter() - t0
        best_s, total = min(best_s, s), total + s
    print(f"SCORE_SEQUENCES_PER_SECOND {n / best_s:.3f}")


if __name__ == "__main__":
    main()
