r"""torch peers of the benchmarked workloads (see :mod:`._peers`).

Every class takes the ``torch`` module as its first argument (the caller
imports it lazily through :func:`._peers.import_peer`), works in float64
and sets ``torch.set_num_threads(threads)``.

Decisions: the samplers run under :func:`torch.no_grad` with the same
hand-derived gradient as the careful NumPy peer (autograd would only add
graph bookkeeping to a two-layer backward pass) and ``out=`` / in-place
tensor operations into preallocated buffers; MALA's accept step writes
``torch.where`` into a spare buffer and swaps the references. Softplus is
``logaddexp(a, 0)`` (exact for every ``a``, as ``MLPEnergy``) in the
samplers. Score matching is what a torch user writes: ``F.softplus``
(its default threshold of 20, beyond which it is linear, is never reached
by the benchmark's pre-activations), ``grad_x E`` with
``create_graph=True``, the Hessian trace as a loop of ``d``
``torch.autograd.grad`` calls (one per input coordinate, each keeping its
graph), then the parameter gradient by one more ``autograd.grad``.
"""

from __future__ import annotations

import math

import numpy as np

from ._peers_numpy import mlp_arrays

__all__ = ["TorchLangevin", "TorchScoreMatching", "TorchRBMGibbs"]


def _t(torch, a):
    return torch.from_numpy(np.array(a, dtype=np.float64, order="C", copy=True))


class TorchLangevin:
    """ULA / MALA on a softplus MLP energy, torch float64, no autograd."""

    def __init__(self, torch, model, n, threads, seed=0):
        torch.set_num_threads(int(threads))
        self.torch = torch
        Ws, bs, w_out, self.b_out = mlp_arrays(model)
        d = model.sizes[0]
        self.Ws = [_t(torch, W) for W in Ws]
        self.WTs = [_t(torch, W.T) for W in Ws]
        self.bs = [_t(torch, b) for b in bs]
        self.w_out = _t(torch, w_out)
        z = torch.zeros
        self.a = [z(n, W.shape[0], dtype=torch.float64) for W in Ws]
        self.z = [z(n, W.shape[0], dtype=torch.float64) for W in Ws]
        self.s = [z(n, W.shape[0], dtype=torch.float64) for W in Ws]
        self.delta = [z(n, W.shape[0], dtype=torch.float64) for W in Ws]
        self.zero = torch.zeros((), dtype=torch.float64)
        mk = lambda *shape: z(*shape, dtype=torch.float64)  # noqa: E731
        self.state = [mk(n, d), mk(n, d), mk(n)]  # x, g, e
        self.prop = [mk(n, d), mk(n, d), mk(n)]  # xp, gp, ep
        self.spare = [mk(n, d), mk(n, d), mk(n)]
        self.noise, self.tmp = mk(n, d), mk(n, d)
        self.u, self.la, self.bwd = mk(n), mk(n), mk(n)
        self.ok = torch.zeros(n, dtype=torch.bool)
        self.accepted = mk(n)
        self.gen = torch.Generator().manual_seed(int(seed))

    def energy_grad(self, x, e, g):
        """Energies into ``e`` and input gradients into ``g`` (tensors) of the batch ``x``."""
        torch = self.torch
        prev = x
        for l, (WT, b) in enumerate(zip(self.WTs, self.bs)):
            a = self.a[l]
            torch.matmul(prev, WT, out=a)
            a.add_(b)
            torch.logaddexp(a, self.zero, out=self.z[l])
            torch.sigmoid(a, out=self.s[l])
            prev = self.z[l]
        torch.mv(prev, self.w_out, out=e)
        e.add_(self.b_out)
        L = len(self.Ws)
        delta = self.delta[L - 1]
        torch.mul(self.s[L - 1], self.w_out, out=delta)
        for l in range(L - 1, 0, -1):
            below = self.delta[l - 1]
            torch.matmul(delta, self.Ws[l], out=below)
            below.mul_(self.s[l - 1])
            delta = below
        torch.matmul(delta, self.Ws[0], out=g)
        return e, g

    def run(self, x0, n_steps, eta, adjust):
        """``n_steps`` ULA or MALA steps from ``x0`` (a NumPy array); returns the final states (a tensor)."""
        torch = self.torch
        with torch.no_grad():
            x, g, e = self.state
            xp, gp, ep = self.prop
            noise, tmp = self.noise, self.tmp
            x.copy_(_t(torch, x0))
            self.accepted.zero_()
            self.energy_grad(x, e, g)
            scale = math.sqrt(2.0 * eta)
            for _ in range(n_steps):
                torch.randn(noise.shape, generator=self.gen, dtype=torch.float64, out=noise)
                noise.mul_(scale)
                target = xp if adjust else x
                torch.sub(x, g, alpha=eta, out=target)
                target.add_(noise)
                if not adjust:
                    self.energy_grad(x, e, g)
                    continue
                self.energy_grad(xp, ep, gp)
                la, bwd, u, ok = self.la, self.bwd, self.u, self.ok
                torch.linalg.vecdot(noise, noise, out=la)  # |xp - x + eta g|^2
                torch.add(x, gp, alpha=eta, out=tmp)
                tmp.sub_(xp)
                torch.linalg.vecdot(tmp, tmp, out=bwd)
                la.sub_(bwd).mul_(0.25 / eta).add_(e).sub_(ep)
                torch.rand(u.shape, generator=self.gen, dtype=torch.float64, out=u)
                u.log_()
                torch.lt(u, la, out=ok)
                xs, gs, es = self.spare
                rows = ok[:, None]
                torch.where(rows, xp, x, out=xs)
                torch.where(rows, gp, g, out=gs)
                torch.where(ok, ep, e, out=es)
                self.spare = [x, g, e]
                x, g, e = xs, gs, es
                self.accepted.add_(ok)
            self.state = [x, g, e]
        return x


class TorchScoreMatching:
    """Exact score matching value and parameter gradient by torch autograd."""

    def __init__(self, torch, model, threads):
        torch.set_num_threads(int(threads))
        self.torch = torch
        Ws, bs, w_out, b_out = mlp_arrays(model)
        self.names = [f"W{l}" for l in range(1, len(Ws) + 1)] + [f"b{l}" for l in range(1, len(Ws) + 1)]
        self.names += ["w_out", "b_out"]
        arrays = Ws + bs + [w_out, np.array(b_out)]
        self.params = [_t(torch, a).requires_grad_(True) for a in arrays]

    def energy(self, x):
        L = (len(self.params) - 2) // 2
        Ws, bs = self.params[:L], self.params[L:2 * L]
        w_out, b_out = self.params[-2], self.params[-1]
        z = x
        for W, b in zip(Ws, bs):
            z = self.torch.nn.functional.softplus(torch_linear(self.torch, z, W, b))
        return z @ w_out + b_out

    def value_and_grad(self, x):
        """``(loss, grads)`` for the batch ``x`` (NumPy); ``grads`` maps parameter names to arrays."""
        torch = self.torch
        xt = _t(torch, x).requires_grad_(True)
        n, d = xt.shape
        e = self.energy(xt)
        (g,) = torch.autograd.grad(e.sum(), xt, create_graph=True)
        tr = torch.zeros(n, dtype=torch.float64)
        for k in range(d):
            (col,) = torch.autograd.grad(g[:, k].sum(), xt, create_graph=True)
            tr = tr + col[:, k]
        loss = (0.5 * (g * g).sum(dim=1) - tr).mean()
        # b_out does not enter the loss: its gradient comes back as None
        grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        out = {}
        for k, p, v in zip(self.names, self.params, grads):
            out[k] = np.zeros(tuple(p.shape)) if v is None else v.detach().numpy()
        return float(loss.detach()), out


def torch_linear(torch, z, W, b):
    """``z W^T + b`` as one fused ``addmm``."""
    return torch.addmm(b, z, W.t())


class TorchRBMGibbs:
    """Block Gibbs sweeps of a binary RBM, torch float64 (``torch.bernoulli`` into buffers)."""

    def __init__(self, torch, W, b_v, b_h, n, threads, seed=0):
        torch.set_num_threads(int(threads))
        self.torch = torch
        self.W, self.b_v, self.b_h = _t(torch, W), _t(torch, b_v), _t(torch, b_h)
        V, H = W.shape
        self.v = torch.zeros(n, V, dtype=torch.float64)
        self.h = torch.zeros(n, H, dtype=torch.float64)
        self.pv = torch.zeros(n, V, dtype=torch.float64)
        self.ph = torch.zeros(n, H, dtype=torch.float64)
        self.gen = torch.Generator().manual_seed(int(seed))

    def prob_h_given_v(self, v, out=None):
        torch = self.torch
        out = torch.empty(v.shape[0], self.W.shape[1], dtype=torch.float64) if out is None else out
        torch.addmm(self.b_h, v, self.W, out=out)
        return torch.sigmoid(out, out=out)

    def prob_v_given_h(self, h, out=None):
        torch = self.torch
        out = torch.empty(h.shape[0], self.W.shape[0], dtype=torch.float64) if out is None else out
        torch.addmm(self.b_v, h, self.W.t(), out=out)
        return torch.sigmoid(out, out=out)

    def run(self, v0, n_sweeps):
        """``n_sweeps`` sweeps from ``v0`` (NumPy); returns the final visible states (a tensor)."""
        torch = self.torch
        with torch.no_grad():
            self.v.copy_(_t(torch, v0))
            for _ in range(n_sweeps):
                self.prob_h_given_v(self.v, out=self.ph)
                torch.bernoulli(self.ph, generator=self.gen, out=self.h)
                self.prob_v_given_h(self.h, out=self.pv)
                torch.bernoulli(self.pv, generator=self.gen, out=self.v)
        return self.v
