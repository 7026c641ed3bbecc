"""Every finite-difference check of every zoo model (tests/zoo.py).

For each model x size (small, medium) x parameter scale (down to 0.1 and up
to the large-weight scale, |W| ~ 50, where the model allows it),
``ebm_ref.testing.check_energy_derivatives`` compares ``grad_x``,
``hessian_diag``, ``hessian_trace``, ``grad_params``,
``grad_params_of_grad_x``, ``grad_params_of_hessian_diag`` and the
single-state shapes with central differences at relative tolerance
``entry.rtol`` (1e-6), on states of the model's domain and, for binary and
spin models, on real points of the continuous extension. The check is
deterministic (fixed seeds), so there is no false-failure rate.
"""

import pytest

import zoo
from ebm_ref.testing import check_energy_derivatives

CASES = zoo.entry_params(
    lambda e: [(size, scale) for size in zoo.SIZES for scale in e.scales],
    marks_of=lambda e, t: t in e.slow,
)


@pytest.mark.parametrize("entry, size, scale", CASES)
def test_energy_derivatives_match_finite_differences(entry, size, scale):
    model = entry.make(size, scale, seed=3)
    x = zoo.derivative_points(model, 6, seed=5)
    report = check_energy_derivatives(model, x, seed=1, rtol=entry.rtol)
    assert report.passed, str(report)
    # every quantity was checked, none silently absent
    assert set(report.results) >= {"grad_x", "hessian_diag", "hessian_trace", "grad_params",
                                   "grad_params_of_grad_x", "grad_params_of_hessian_diag", "single_state"}


def test_zoo_covers_every_energy_model():
    # a model class added to ebm_ref.energies without a zoo entry fails here
    from ebm_ref import energies

    covered = {type(e.make("small")) for e in zoo.ENTRIES}
    classes = {getattr(energies, name) for name in energies.__all__}
    models = {c for c in classes if isinstance(c, type) and issubclass(c, energies.EnergyModel)}
    assert models - {energies.EnergyModel} <= covered
    # and ids are unique (they name the tests)
    assert len(zoo.BY_ID) == len(zoo.ENTRIES)
