r"""Careful-NumPy peers of the benchmarked workloads (see :mod:`._peers`).

Every buffer is allocated once, when the workload is set up for a batch
size; every elementwise step is an in-place ufunc with ``out=``; every
matrix product is one BLAS call on the whole batch; random numbers are
drawn into preallocated arrays. Written from the layouts and formulas of
docs/models.md, not from the package's kernels.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import expit

__all__ = ["softplus_sigmoid", "mlp_arrays", "NumpyLangevin", "NumpyScoreMatching", "NumpyRBMGibbs"]


def softplus_sigmoid(a, z, s):
    r"""``s = sigmoid(a)`` and ``z = softplus(a) = a - log sigmoid(a)``, three ufunc passes.

    One ``expit`` serves both (``logaddexp(0, a)`` plus ``expit`` measured
    3.5x slower on (4096, 64)). Exact to rounding while ``sigmoid(a)`` is a
    normal number (``a > -708``), far beyond the benchmarks' pre-activations.
    """
    expit(a, out=s)
    np.log(s, out=z)
    np.subtract(a, z, out=z)


def mlp_arrays(model):
    """``(Ws, bs, w_out, b_out)`` of an ``MLPEnergy``: float64 copies in its public layout."""
    p = model.params
    L = len(model.sizes) - 1
    Ws = [np.array(p[f"W{l}"], dtype=np.float64) for l in range(1, L + 1)]
    bs = [np.array(p[f"b{l}"], dtype=np.float64) for l in range(1, L + 1)]
    return Ws, bs, np.array(p["w_out"], dtype=np.float64), float(p["b_out"])


class NumpyLangevin:
    """Careful-NumPy ULA / MALA on a softplus MLP energy, all buffers preallocated.

    Parameters
    ----------
    model : MLPEnergy
        Softplus activations.
    n : int
        Number of chains (the batch every buffer is sized for).
    seed : int
        Seed of the ``numpy.random.Generator`` of the noise.

    Notes
    -----
    ``energy_grad(x)`` runs the forward pass ``a_l = z_{l-1} W_l^T + b_l``
    (one GEMM per layer into a fixed buffer), ``z_l = softplus(a_l)``
    and ``s_l = sigmoid(a_l)`` (:func:`softplus_sigmoid`) and backpropagates
    ``delta_L = w_out * s_L``, ``delta_{l-1} = (delta_l W_l) * s_{l-1}``,
    ``grad = delta_1 W_1``.
    """

    def __init__(self, model, n, seed=0):
        self.Ws, self.bs, self.w_out, self.b_out = mlp_arrays(model)
        d = model.sizes[0]
        self.WTs = [np.ascontiguousarray(W.T) for W in self.Ws]
        self.a = [np.empty((n, W.shape[0])) for W in self.Ws]
        self.z = [np.empty((n, W.shape[0])) for W in self.Ws]
        self.s = [np.empty((n, W.shape[0])) for W in self.Ws]
        self.delta = [np.empty((n, W.shape[0])) for W in self.Ws]
        self.x, self.g, self.e = np.empty((n, d)), np.empty((n, d)), np.empty(n)
        self.xp, self.gp, self.ep = np.empty((n, d)), np.empty((n, d)), np.empty(n)
        self.noise, self.tmp = np.empty((n, d)), np.empty((n, d))
        self.u, self.la, self.bwd = np.empty(n), np.empty(n), np.empty(n)
        self.ok = np.empty(n, dtype=bool)
        self.accepted = np.zeros(n)
        self.gen = np.random.default_rng(seed)

    def energy_grad(self, x, e, g):
        """Energies into ``e`` and input gradients into ``g`` of the batch ``x``."""
        prev = x
        for l, (WT, b) in enumerate(zip(self.WTs, self.bs)):
            a = self.a[l]
            np.matmul(prev, WT, out=a)
            np.add(a, b, out=a)
            softplus_sigmoid(a, self.z[l], self.s[l])
            prev = self.z[l]
        np.matmul(prev, self.w_out, out=e)
        np.add(e, self.b_out, out=e)
        L = len(self.Ws)
        delta = self.delta[L - 1]
        np.multiply(self.s[L - 1], self.w_out, out=delta)
        for l in range(L - 1, 0, -1):
            below = self.delta[l - 1]
            np.matmul(delta, self.Ws[l], out=below)
            np.multiply(below, self.s[l - 1], out=below)
            delta = below
        np.matmul(delta, self.Ws[0], out=g)
        return e, g

    def run(self, x0, n_steps, eta, adjust):
        """``n_steps`` ULA (``adjust=False``) or MALA steps from ``x0``; returns the final states (a view)."""
        x, g, e, xp, gp, ep = self.x, self.g, self.e, self.xp, self.gp, self.ep
        noise, tmp, gen = self.noise, self.tmp, self.gen
        np.copyto(x, x0)
        self.accepted[:] = 0.0
        self.energy_grad(x, e, g)
        scale = math.sqrt(2.0 * eta)
        for _ in range(n_steps):
            gen.standard_normal(out=noise)
            np.multiply(noise, scale, out=noise)
            target = xp if adjust else x
            np.multiply(g, eta, out=tmp)
            np.subtract(x, tmp, out=target)
            np.add(target, noise, out=target)
            if not adjust:
                self.energy_grad(x, e, g)
                continue
            self.energy_grad(xp, ep, gp)
            # log alpha = e - ep + (|xp - x + eta g|^2 - |x - xp + eta gp|^2) / (4 eta),
            # where xp - x + eta g is the scaled noise
            la, bwd, u, ok = self.la, self.bwd, self.u, self.ok
            np.einsum("ij,ij->i", noise, noise, out=la)
            np.multiply(gp, eta, out=tmp)
            np.add(tmp, x, out=tmp)
            np.subtract(tmp, xp, out=tmp)
            np.einsum("ij,ij->i", tmp, tmp, out=bwd)
            np.subtract(la, bwd, out=la)
            np.multiply(la, 0.25 / eta, out=la)
            np.add(la, e, out=la)
            np.subtract(la, ep, out=la)
            gen.random(out=u)
            np.log(u, out=u)
            np.less(u, la, out=ok)  # log u < min(0, log alpha), as log u < 0
            rows = ok[:, None]
            np.copyto(x, xp, where=rows)
            np.copyto(g, gp, where=rows)
            np.copyto(e, ep, where=ok)
            np.add(self.accepted, ok, out=self.accepted)
        return x


class NumpyScoreMatching:
    r"""Careful-NumPy exact score matching (value and parameter gradient) for a softplus MLP.

    Parameters
    ----------
    model : MLPEnergy
        Softplus activations, any number of hidden layers.
    n : int
        Batch size the buffers are sized for.

    Notes
    -----
    Forward: per layer ``a_l``, ``s_l = expit(a_l)``, ``p_l = s_l expit(-a_l)``
    (``phi''``), the input Jacobian ``J_l = s_l * A_l`` with ``A_l = J_{l-1}
    W_l^T`` (one GEMM over the ``(n d, h)`` stacked rows; ``A_1 = W_1^T``),
    ``P_l = sum_k A_l^2`` and the summed second derivative ``Sigma_l = p_l
    P_l + s_l (Sigma_{l-1} W_l^T)``. Then ``grad_x E = J_L w_out``, ``tr
    H = Sigma_L . w_out`` and the loss ``mean(|grad_x E|^2 / 2 - tr H)``.
    The parameter gradient is the hand-written reverse pass of exactly this
    recursion (adjoints ``Abar``, ``abar``, ``Jbar``, ``Sigmabar``; the
    adjoint of ``Sigma`` does not depend on the input coordinate ``k``).
    """

    def __init__(self, model, n):
        self.Ws, self.bs, self.w_out, self.b_out = mlp_arrays(model)
        self.WTs = [np.ascontiguousarray(W.T) for W in self.Ws]
        self.colsq = np.sum(self.Ws[0] ** 2, axis=1)  # P_1 = sum_k W1[:, k]^2
        d = model.sizes[0]
        hs = [W.shape[0] for W in self.Ws]
        self.n, self.d = n, d
        small = ("a", "s", "sm", "p", "z", "sig", "ws", "P", "t", "abar", "sbar", "ja")
        self.buf = {k: [np.empty((n, h)) for h in hs] for k in small}
        self.J = [np.empty((n, d, h)) for h in hs]
        self.A = [None] + [np.empty((n, d, h)) for h in hs[1:]]
        self.Abar = [np.empty((n, d, h)) for h in hs]
        self.Jbar = [np.empty((n, d, h)) for h in hs]
        self.g = np.empty((n, d))
        self.htr = np.empty(n)

    def value(self, x):
        """Loss of the batch ``x`` (runs the forward pass)."""
        B, J, A, n, d = self.buf, self.J, self.A, self.n, self.d
        prev = x
        for i, (WT, b) in enumerate(zip(self.WTs, self.bs)):
            a, s, sm, p = B["a"][i], B["s"][i], B["sm"][i], B["p"][i]
            np.matmul(prev, WT, out=a)
            np.add(a, b, out=a)
            softplus_sigmoid(a, B["z"][i], s)
            np.negative(a, out=sm)
            expit(sm, out=sm)
            np.multiply(s, sm, out=p)
            sig = B["sig"][i]
            if i == 0:
                np.multiply(s[:, None, :], WT[None], out=J[0])
                np.multiply(p, self.colsq, out=sig)
            else:
                h, hp = WT.shape[1], WT.shape[0]
                np.matmul(J[i - 1].reshape(n * d, hp), WT, out=A[i].reshape(n * d, h))
                np.matmul(B["sig"][i - 1], WT, out=B["ws"][i])
                np.multiply(A[i], A[i], out=J[i])
                np.sum(J[i], axis=1, out=B["P"][i])
                np.multiply(p, B["P"][i], out=sig)
                np.multiply(s, B["ws"][i], out=B["t"][i])
                np.add(sig, B["t"][i], out=sig)
                np.multiply(A[i], s[:, None, :], out=J[i])
            prev = B["z"][i]
        np.matmul(J[-1], self.w_out, out=self.g)
        np.matmul(B["sig"][-1], self.w_out, out=self.htr)
        return float(0.5 * np.einsum("ij,ij->", self.g, self.g) / n - self.htr.sum() / n)

    def value_and_grad(self, x):
        """``(loss, grads)``; ``grads`` has the keys of ``MLPEnergy.params``."""
        loss = self.value(x)
        B, J, A, Abar, Jbar, n, d = self.buf, self.J, self.A, self.Abar, self.Jbar, self.n, self.d
        c = 1.0 / n
        L = len(self.Ws)
        h = self.w_out.shape[0]
        grads = {"b_out": np.zeros(())}
        grads["w_out"] = c * (self.g.reshape(-1) @ J[-1].reshape(n * d, h)) - c * B["sig"][-1].sum(axis=0)
        np.multiply(self.g[:, :, None], c * self.w_out, out=Jbar[-1])
        sbar = B["sbar"][-1]
        sbar[...] = -c * self.w_out
        zbar = None
        for i in range(L - 1, -1, -1):
            s, sm, p, t, abar, ja = B["s"][i], B["sm"][i], B["p"][i], B["t"][i], B["abar"][i], B["ja"][i]
            sbar = B["sbar"][i]
            Ai = A[i] if i > 0 else self.WTs[0]
            # sum_k Jbar * A (before Jbar is scaled in place)
            np.einsum("nkh,nkh->nh" if i > 0 else "nkh,kh->nh", Jbar[i], Ai, out=ja)
            # Abar = 2 sbar p A + s Jbar
            np.multiply(sbar, p, out=t)
            np.multiply(t, 2.0, out=t)
            np.multiply(Ai, t[:, None, :], out=Abar[i])
            np.multiply(Jbar[i], s[:, None, :], out=Jbar[i])
            np.add(Abar[i], Jbar[i], out=Abar[i])
            # abar = sbar (p u P + p ws) + p ja + s zbar, with u = sm - s
            np.subtract(sm, s, out=t)
            np.multiply(t, p, out=t)
            if i == 0:
                np.multiply(t, self.colsq, out=t)
            else:
                np.multiply(t, B["P"][i], out=t)
                np.multiply(p, B["ws"][i], out=abar)
                np.add(t, abar, out=t)
            np.multiply(sbar, t, out=abar)
            np.multiply(p, ja, out=t)
            np.add(abar, t, out=abar)
            if zbar is not None:
                np.multiply(s, zbar, out=t)
                np.add(abar, t, out=abar)
            W = self.Ws[i]
            if i == 0:
                gW = Abar[0].sum(axis=0).T + abar.T @ x
            else:
                hp = W.shape[1]
                np.multiply(sbar, s, out=t)  # adjoint of Sigma_{i-1} W^T
                gW = Abar[i].reshape(n * d, -1).T @ J[i - 1].reshape(n * d, hp)
                gW += t.T @ B["sig"][i - 1]
                gW += abar.T @ B["z"][i - 1]
                np.matmul(Abar[i].reshape(n * d, -1), W, out=Jbar[i - 1].reshape(n * d, hp))
                np.matmul(t, W, out=B["sbar"][i - 1])
                zbar = B["ja"][i - 1]  # free until layer i-1 recomputes it
                np.matmul(abar, W, out=zbar)
                zbar = zbar.copy()
            grads[f"W{i + 1}"] = gW
            grads[f"b{i + 1}"] = abar.sum(axis=0)
        return loss, grads


class NumpyRBMGibbs:
    """Careful-NumPy block Gibbs sweeps of a binary RBM on a batch of chains.

    One sweep: ``h ~ Bernoulli(expit(v W + b_h))`` then ``v ~
    Bernoulli(expit(h W^T + b_v))``, each a GEMM into a fixed buffer, an
    in-place bias add and ``expit``, uniforms drawn into a fixed buffer and
    ``np.less(u, p, out=...)`` writing the 0/1 states as float64.
    """

    def __init__(self, W, b_v, b_h, n, seed=0):
        self.W = np.asarray(W, dtype=np.float64)
        self.b_v, self.b_h = np.asarray(b_v, dtype=np.float64), np.asarray(b_h, dtype=np.float64)
        V, H = self.W.shape
        self.v, self.h = np.empty((n, V)), np.empty((n, H))
        self.pv, self.ph = np.empty((n, V)), np.empty((n, H))
        self.uv, self.uh = np.empty((n, V)), np.empty((n, H))
        self.gen = np.random.default_rng(seed)

    def prob_h_given_v(self, v, out=None):
        out = np.empty((v.shape[0], self.W.shape[1])) if out is None else out
        np.matmul(v, self.W, out=out)
        np.add(out, self.b_h, out=out)
        return expit(out, out=out)

    def prob_v_given_h(self, h, out=None):
        out = np.empty((h.shape[0], self.W.shape[0])) if out is None else out
        np.matmul(h, self.W.T, out=out)
        np.add(out, self.b_v, out=out)
        return expit(out, out=out)

    def run(self, v0, n_sweeps):
        """``n_sweeps`` sweeps from ``v0``; returns the final visible states (a view)."""
        v, h, gen = self.v, self.h, self.gen
        np.copyto(v, v0)
        for _ in range(n_sweeps):
            self.prob_h_given_v(v, out=self.ph)
            gen.random(out=self.uh)
            np.less(self.uh, self.ph, out=h)
            self.prob_v_given_h(h, out=self.pv)
            gen.random(out=self.uv)
            np.less(self.uv, self.pv, out=v)
        return v
