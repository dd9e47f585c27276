"""Per-track posterior weights of backward histories (backtrace.prompt.posterior)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtrace.prompt.posterior import PRIORS, posterior_weights

COLUMNS = ["track_index", "sample_index", "status", "x_m", "y_m", "ux", "uy", "uz",
           "kinetic_energy_gev", "charge", "weight"]


class FakeDensity:
    """Hand-computable source density that records how it is called.

    energy_density(e, q) = e / 10 for μ+, e / 20 for μ-;
    __call__(x, y, tx, ty, e, q) = energy_density(e, q) · (1 + x + 2y + 3tx + 4ty).
    """

    def __init__(self):
        self.calls = []

    def energy_density(self, e, q):
        self.calls.append(("energy", np.asarray(e, float), np.asarray(q, float)))
        e, q = np.asarray(e, float), np.asarray(q, float)
        return np.where(q > 0, e / 10, e / 20)

    def __call__(self, x, y, tx, ty, e, q):
        self.calls.append(("full", *(np.asarray(v, float) for v in (x, y, tx, ty, e, q))))
        x, y, tx, ty = (np.asarray(v, float) for v in (x, y, tx, ty))
        e, q = np.asarray(e, float), np.asarray(q, float)
        return np.where(q > 0, e / 10, e / 20) * (1 + x + 2 * y + 3 * tx + 4 * ty)


def _row(track, sample, status, e, q, w, x=0.0, y=0.0, ux=0.0, uy=0.0):
    uz = np.sqrt(1 - ux * ux - uy * uy)
    return dict(track_index=track, sample_index=sample, status=status, x_m=x, y_m=y,
                ux=ux, uy=uy, uz=uz, kinetic_energy_gev=e, charge=q, weight=w)


@pytest.fixture
def histories():
    """Track 0: three histories, one of which left the world; track 1: two
    μ- histories; track 2: none reached the target."""
    rows = [
        _row(0, 0, "reached_target", 10.0, 1.0, 2.0, x=0.01, y=0.02, ux=0.001, uy=-0.002),
        _row(0, 1, "reached_target", 20.0, 1.0, 1.0, x=-0.03, y=0.01, ux=-0.002, uy=0.001),
        _row(0, 2, "left_world", 30.0, 1.0, 5.0, x=0.5, y=0.5),
        _row(1, 0, "reached_target", 40.0, -1.0, 1.0, x=0.02, y=-0.01, ux=0.003, uy=0.0),
        _row(1, 1, "reached_target", 10.0, -1.0, 3.0, x=0.0, y=0.04, ux=0.0, uy=0.004),
        _row(2, 0, "left_downstream", 50.0, 1.0, 1.0),
        _row(2, 1, "energy_limit", 60.0, 1.0, 1.0),
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


def _per_track_sum(out, column="posterior_weight"):
    return out.groupby("track_index")[column].sum()


def test_prior_energy_hand_computed(histories):
    dens = FakeDensity()
    out = posterior_weights(histories, dens, prior="energy")
    # φ = e/10 (μ+) or e/20 (μ-); 0 for histories not at the target
    assert out["source_density"].tolist() == pytest.approx([1.0, 2.0, 0.0, 2.0, 0.5, 0, 0])
    # ω·φ: track 0: 2·1, 1·2 → 1/2, 1/2; track 1: 1·2, 3·0.5 → 2/3.5, 1.5/3.5
    assert out["posterior_raw"].tolist() == pytest.approx([2.0, 2.0, 0.0, 2.0, 1.5, 0, 0])
    assert out["posterior_weight"].tolist() == pytest.approx(
        [0.5, 0.5, 0.0, 2 / 3.5, 1.5 / 3.5, 0.0, 0.0], rel=1e-12)
    assert [c[0] for c in dens.calls] == ["energy"]
    assert dens.calls[0][1].tolist() == histories["kinetic_energy_gev"].tolist()
    assert dens.calls[0][2].tolist() == histories["charge"].tolist()


def test_input_columns_kept_and_not_modified(histories):
    before = histories.copy()
    out = posterior_weights(histories, FakeDensity())
    pd.testing.assert_frame_equal(histories, before)
    pd.testing.assert_frame_equal(out[COLUMNS], before)
    assert list(out.columns) == COLUMNS + ["source_density", "posterior_raw",
                                           "posterior_weight"]


@pytest.mark.parametrize("prior", PRIORS)
def test_per_track_sum_is_one_or_zero(histories, prior):
    out = posterior_weights(histories, FakeDensity(), prior=prior)
    sums = _per_track_sum(out)
    assert sums[0] == pytest.approx(1.0, rel=1e-12)
    assert sums[1] == pytest.approx(1.0, rel=1e-12)
    assert sums[2] == 0.0  # no history reached the target
    not_reached = out["status"] != "reached_target"
    assert (out.loc[not_reached, "posterior_weight"] == 0).all()
    assert (out.loc[not_reached, "source_density"] == 0).all()
    assert np.all(np.isfinite(out["posterior_weight"]))


def test_prior_none_is_omega_over_sum(histories):
    out = posterior_weights(histories, FakeDensity(), prior="none")
    # track 0: ω = 2, 1 (the left_world history with ω = 5 does not count)
    assert out["posterior_weight"].tolist() == pytest.approx(
        [2 / 3, 1 / 3, 0.0, 0.25, 0.75, 0.0, 0.0], rel=1e-12)
    assert out["source_density"].tolist() == [1, 1, 0, 1, 1, 0, 0]


def test_prior_full_uses_the_5d_density_with_slopes(histories):
    dens = FakeDensity()
    out = posterior_weights(histories, dens, prior="full")
    assert [c[0] for c in dens.calls] == ["full"]
    _, x, y, tx, ty, e, q = dens.calls[0]
    h = histories
    assert x.tolist() == h["x_m"].tolist() and y.tolist() == h["y_m"].tolist()
    assert tx == pytest.approx((h["ux"] / h["uz"]).to_numpy(), rel=1e-14)
    assert ty == pytest.approx((h["uy"] / h["uz"]).to_numpy(), rel=1e-14)
    assert e.tolist() == h["kinetic_energy_gev"].tolist()
    assert q.tolist() == h["charge"].tolist()

    def phi(r):
        tx_, ty_ = r.ux / r.uz, r.uy / r.uz
        base = r.kinetic_energy_gev / (10 if r.charge > 0 else 20)
        return base * (1 + r.x_m + 2 * r.y_m + 3 * tx_ + 4 * ty_)
    expected_phi = np.array([phi(r) if r.status == "reached_target" else 0.0
                             for r in h.itertuples()])
    raw = h["weight"].to_numpy() * expected_phi
    post = np.zeros(len(h))
    for t in (0, 1):
        m = (h["track_index"] == t).to_numpy()
        post[m] = raw[m] / raw[m].sum()
    assert out["source_density"].to_numpy() == pytest.approx(expected_phi, rel=1e-12)
    assert out["posterior_weight"].to_numpy() == pytest.approx(post, rel=1e-12)
    # differs from the energy prior (the transverse factor matters)
    energy = posterior_weights(histories, FakeDensity(), prior="energy")
    assert not np.allclose(out["posterior_weight"], energy["posterior_weight"])


def test_normalise_false_returns_raw_in_both_columns(histories):
    out = posterior_weights(histories, FakeDensity(), prior="energy", normalise=False)
    expected = [2.0, 2.0, 0.0, 2.0, 1.5, 0.0, 0.0]
    assert out["posterior_raw"].tolist() == pytest.approx(expected)
    assert out["posterior_weight"].tolist() == pytest.approx(expected)


def test_split_calls_with_normalise_false_recombine_to_one_call(histories):
    """Histories of a track gathered over several calls: Σ raw / Σ norm is
    the single-call posterior."""
    dens = FakeDensity()
    whole = posterior_weights(histories, dens)
    a = posterior_weights(histories[histories["sample_index"] == 0], dens, normalise=False)
    b = posterior_weights(histories[histories["sample_index"] > 0], dens, normalise=False)
    both = pd.concat([a, b]).sort_index()
    norm = both.groupby("track_index")["posterior_raw"].transform("sum")
    with np.errstate(invalid="ignore", divide="ignore"):
        combined = np.where(norm > 0, both["posterior_raw"] / norm, 0.0)
    assert combined == pytest.approx(whole["posterior_weight"].to_numpy(), rel=1e-12)


def test_track_weight_multiplies(histories):
    tw = pd.Series({0: 2.0, 1: 0.5, 2: 7.0})
    out = posterior_weights(histories, FakeDensity(), track_weight=tw, prior="energy")
    assert out["posterior_weight"].tolist() == pytest.approx(
        [1.0, 1.0, 0.0, 1 / 3.5, 0.75 / 3.5, 0.0, 0.0], rel=1e-12)
    sums = _per_track_sum(out)
    assert sums[0] == pytest.approx(2.0) and sums[1] == pytest.approx(0.5)
    assert sums[2] == 0.0
    # the raw column does not carry the track weight
    assert out["posterior_raw"].tolist() == pytest.approx([2.0, 2.0, 0.0, 2.0, 1.5, 0, 0])
    raw = posterior_weights(histories, FakeDensity(), track_weight=tw, normalise=False)
    assert raw["posterior_weight"].tolist() == pytest.approx(
        [4.0, 4.0, 0.0, 1.0, 0.75, 0.0, 0.0])


def test_track_weight_order_does_not_matter(histories):
    tw = pd.Series([0.5, 7.0, 2.0], index=[1, 2, 0])
    out = posterior_weights(histories, FakeDensity(), track_weight=tw)
    assert _per_track_sum(out).tolist() == pytest.approx([2.0, 0.5, 0.0])


def test_unknown_prior_raises(histories):
    with pytest.raises(ValueError, match="prior='flat'"):
        posterior_weights(histories, FakeDensity(), prior="flat")


def test_zero_density_track_gets_zero_not_nan(histories):
    class ZeroForMuMinus(FakeDensity):
        def energy_density(self, e, q):
            return np.where(np.asarray(q) > 0, super().energy_density(e, q), 0.0)

    out = posterior_weights(histories, ZeroForMuMinus(), prior="energy")
    w = out["posterior_weight"].to_numpy()
    assert np.all(np.isfinite(w))
    assert w[out["track_index"] == 1].tolist() == [0.0, 0.0]
    assert _per_track_sum(out)[0] == pytest.approx(1.0)


def test_density_value_of_unreached_histories_is_ignored(histories):
    """A density that is NaN where histories did not reach the plane (their
    state is not at the source plane) does not spoil the track."""
    class NanOutside(FakeDensity):
        def energy_density(self, e, q):
            v = super().energy_density(e, q)
            return np.where((np.asarray(e) >= 30) & (np.asarray(q) > 0), np.nan, v)

    out = posterior_weights(histories, NanOutside(), prior="energy")
    assert out["posterior_weight"].tolist() == pytest.approx(
        [0.5, 0.5, 0.0, 2 / 3.5, 1.5 / 3.5, 0.0, 0.0], rel=1e-12)


def test_interleaved_rows_and_non_default_index(histories):
    """Rows of the tracks mixed and an arbitrary index: results follow the rows."""
    perm = [4, 0, 6, 2, 3, 5, 1]
    shuffled = histories.iloc[perm].set_axis([100, 7, 3, 55, 9, 1, 20])
    ref = posterior_weights(histories, FakeDensity())
    out = posterior_weights(shuffled, FakeDensity())
    assert list(out.index) == [100, 7, 3, 55, 9, 1, 20]
    assert out["posterior_weight"].to_numpy() == pytest.approx(
        ref["posterior_weight"].to_numpy()[perm], rel=1e-12)
    tw = pd.Series({0: 2.0, 1: 0.5, 2: 7.0})
    ref_tw = posterior_weights(histories, FakeDensity(), track_weight=tw)
    out_tw = posterior_weights(shuffled, FakeDensity(), track_weight=tw)
    assert out_tw["posterior_weight"].to_numpy() == pytest.approx(
        ref_tw["posterior_weight"].to_numpy()[perm], rel=1e-12)


def test_single_history_tracks_get_weight_one():
    h = pd.DataFrame([_row(t, 0, "reached_target", 5.0 + t, 1.0, 0.1 * (t + 1))
                      for t in range(4)], columns=COLUMNS)
    out = posterior_weights(h, FakeDensity())
    assert out["posterior_weight"].tolist() == pytest.approx([1.0] * 4, rel=1e-12)
