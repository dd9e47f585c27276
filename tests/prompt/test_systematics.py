"""Systematic variations: which re-runs, their overrides, the shifts, and
that every re-run moves the estimate the expected way."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtrace.beamline.geometry import load_geometry
from backtrace.prompt.measured import measured_terms
from backtrace.prompt.systematics import (
    closure_relative,
    deltas,
    invisible_relative,
    magnet_groups,
    rerun_variations,
    shift_stat,
    varied_config,
)
from backtrace.regions import load_regions

from ..conftest import synthetic_tracks

TRACED_GROUPS = ("achromat1", "sweepers", "B3", "achromat2", "trims")


def test_magnet_groups_of_the_2021_geometry():
    groups = magnet_groups(load_geometry())
    assert list(groups) == ["achromat1", "sweepers", "B3", "achromat2", "trims",
                            "spectrometer"]
    assert groups["sweepers"] == ["sweeper", "SCR.1"]
    assert groups["B3"] == ["B3A", "B3B", "B3C"]


def test_levels():
    g = load_geometry()
    fast = [(v.name, v.direction) for v in rerun_variations(g, "fast")]
    assert fast == [(f"field:{n}", "up") for n in magnet_groups(g)] + \
        [("density", "up"), ("method", "alt")]
    full = rerun_variations(g, "full")
    assert len(full) == 2 * 6 + 2 + 1
    assert rerun_variations(g, "none") == []
    with pytest.raises(ValueError, match="systematics level"):
        rerun_variations(g, "most")


def test_field_variation_multiplies_the_current_scales():
    g = load_geometry(overrides=["sweeper.scale=0.5"])
    up = next(v for v in rerun_variations(g, "full")
              if v.name == "field:sweepers" and v.direction == "up")
    down = next(v for v in rerun_variations(g, "full")
                if v.name == "field:sweepers" and v.direction == "down")
    varied = load_geometry(overrides=["sweeper.scale=0.5", *up.overrides])
    assert varied.element("sweeper").scale == pytest.approx(0.525)
    assert varied.element("SCR.1").scale == pytest.approx(1.05)
    assert load_geometry(overrides=down.overrides).element("SCR.1").scale == \
        pytest.approx(0.95)
    assert varied.element("B3A").scale == 1.0


def test_density_variation_scales_iron_and_copper_parts_only():
    g = load_geometry()
    up = next(v for v in rerun_variations(g, "fast") if v.name == "density")
    varied = load_geometry(overrides=up.overrides)
    seen = set()
    for e, e0 in zip(varied.elements, g.elements):
        for p, p0 in zip(e.parts, e0.parts):
            factor = 1.03 if p.material in ("iron", "copper") else 1.0
            assert p.density_scale == pytest.approx(factor * p0.density_scale), \
                (e.name, p.material)
            seen.add(p.material)
    assert {"iron", "copper", "tungsten"} <= seen
    # an element whose density is already scaled (MUV1: 0.697) is scaled further
    assert varied.element("MUV1").parts[0].density_scale == pytest.approx(0.697 * 1.03)


def test_varied_config_keeps_the_nominal_source_prior():
    from backtrace.prompt.pipeline import RunConfig

    g = load_geometry()
    method = next(v for v in rerun_variations(g, "fast") if v.name == "method")
    base = RunConfig(overrides=("sweeper.scale=0",), samples_per_track=2)
    vc = varied_config(base, method, 8)
    assert vc.energy_loss == "mixed" and vc.samples_per_track == 8
    assert vc.source_overrides == ("sweeper.scale=0",)
    density = next(v for v in rerun_variations(g, "fast") if v.name == "density")
    vd = varied_config(base, density, 2)
    assert vd.overrides[0] == "sweeper.scale=0" and len(vd.overrides) > 10
    assert vd.source_overrides == ("sweeper.scale=0",) and vd.energy_loss == "straggled"


def _cands(weights, tracks=(0, 1, 1)):
    return pd.DataFrame({"region": ["SR", "outside", "outside"],
                         "category": ["mu-mu", "mu-mu", "other"],
                         "process": ["photonuclear", "mumu_pair", "knock_on"],
                         "weight": weights, "track_index": list(tracks)})


#: The measured terms of a run of the shipped geometry and selection.
MEASURED = {"invisible": {"mu-mu": (0.045, 0.011)}, "closure": {"mu-mu": (0.924, 0.037)}}


def test_deltas_by_reweighting_and_reruns():
    nominal = _cands([1.0, 2.0, 4.0])
    runs = {"density": {"up": _cands([1.1, 2.0, 4.0]), "down": _cands([0.8, 2.0, 4.0])},
            "method": {"alt": _cands([1.0, 2.5, 4.0])}}
    # what a run of the shipped geometry and selection gets (test_measured.py)
    assert measured_terms(None, (), load_regions()).values == MEASURED
    sr = deltas(nominal, runs, lambda f: f["region"] == "SR", MEASURED)
    assert sr["pot"] == pytest.approx(0.2)
    assert sr["scale:photonuclear"] == pytest.approx(0.3)
    assert sr["scale:mumu_pair"] == 0 and sr["scale:knock_on"] == 0
    assert sr["density"] == pytest.approx(0.2)       # max(|+0.1|, |-0.2|)
    assert sr["method"] == 0
    total = deltas(nominal, runs, lambda f: pd.Series(True, index=f.index), MEASURED)
    assert total["pot"] == pytest.approx(1.4)
    assert total["scale:mumu_pair"] == pytest.approx(0.6)
    assert total["scale:knock_on"] == pytest.approx(0.2)
    assert total["method"] == pytest.approx(0.5)
    # the part the backward method cannot see: mu-mu (weight 1 in SR, 2
    # outside) at the measured fraction + error, 'other' not measured
    f = sum(MEASURED["invisible"]["mu-mu"])
    assert total["invisible"] == pytest.approx(3.0 * f / (1 - f))
    assert 0.02 < f / (1 - f) < 0.08               # +5.9 % of the mu-mu yield
    assert sr["invisible"] == pytest.approx(f / (1 - f))
    assert invisible_relative(0.045, 0.011) == pytest.approx(f / (1 - f))
    forward = deltas(nominal.assign(visible=True), {}, lambda d: d["weight"] > 0, MEASURED)
    assert forward["invisible"] == 0.0              # the forward simulation misses nothing
    # the closure: mu-mu yield x |1 - R| (+) its error, symmetric
    r, err = MEASURED["closure"]["mu-mu"]
    assert total["closure"] == pytest.approx(3.0 * np.hypot(1 - r, err))
    assert sr["closure"] == pytest.approx(closure_relative(r, err))
    assert 0.03 < closure_relative(r, err) < 0.3
    assert forward["closure"] == 0.0
    # the measured terms come in a fixed place, whatever the order given
    assert list(deltas(nominal, runs, lambda f: f["region"] == "SR",
                       dict(reversed(MEASURED.items())))) == list(sr)
    assert list(sr)[6:8] == ["invisible", "closure"]
    # not measured for the run: no entry at all (not a zero)
    bare = deltas(nominal, runs, lambda f: f["region"] == "SR")
    assert "invisible" not in bare and "closure" not in bare
    assert {k: v for k, v in sr.items() if k not in MEASURED} == bare
    only = deltas(nominal, runs, lambda f: f["region"] == "SR",
                  {"closure": MEASURED["closure"]})
    assert "invisible" not in only and only["closure"] == sr["closure"]
    # paired per-track spread: track 0 moves by 0.1, track 1 by 0.5
    assert shift_stat(nominal, _cands([1.1, 2.5, 4.0])) == pytest.approx(0.26 ** 0.5)
    # a variation with no candidate at all
    assert shift_stat(nominal, nominal.iloc[:0]) == pytest.approx((1 + 36) ** 0.5)


@pytest.fixture(scope="module")
def traced(physics):
    """Backward traces of 30 synthetic tracks (2 histories each) to the TAX
    exit with the nominal geometry and with given overrides (same seed:
    common random numbers)."""
    import numpy as np

    from backtrace.transport import TraceConfig, Tracer

    df = synthetic_tracks(30, seed=3)
    df["track_index"] = np.arange(len(df))
    z_end = load_geometry().tax_exit_z_m

    def trace(overrides=()):
        return Tracer(TraceConfig(overrides=tuple(overrides), samples_per_track=2, seed=1,
                                  record=True, to_z_m=z_end)).trace(df)

    return trace


def _variation(name, direction):
    return next(v for v in rerun_variations(load_geometry(), "full")
                if v.name == name and v.direction == direction)


def test_higher_density_more_forced_interaction_weight(traced, physics):
    from backtrace.interactions.forced import ForcedConfig, ForcedSampler

    sampler = ForcedSampler(physics, ForcedConfig(z_min_m=100.0, z_max_m=183.508))

    def expected_interactions(result):
        inter, _ = sampler.sample(result.states, seed=1)
        return inter["probability"].sum()

    from backtrace.interactions.forced import segments

    nominal = traced()
    p0 = expected_interactions(nominal)
    up = expected_interactions(traced(_variation("density", "up").overrides)) / p0
    down = expected_interactions(traced(_variation("density", "down").overrides)) / p0
    # P = Σ σ ΔX: the grammage of the iron and copper parts of nearly the same
    # paths scales with ρ (±3 %); lead glass, krypton, mylar and air do not
    seg = segments(nominal.states)
    z = 0.5 * (seg["z_m_a"] + seg["z_m_b"])
    seg = seg[(z >= 100.0) & (z <= 183.508) & (seg["material"] != "vacuum")]
    p_seg = sampler.segment_sigma(seg.reset_index(drop=True)).sum(axis=1) \
        * seg["dgrammage_kg_m2"].to_numpy()
    share = p_seg[seg["material"].isin(["iron", "copper"]).to_numpy()].sum() / p_seg.sum()
    assert 0.1 < share < 0.9
    assert up - 1 == pytest.approx(0.03 * share, rel=0.3)
    assert 1 - down == pytest.approx(0.03 * share, rel=0.3)


def test_field_scales_move_the_back_traced_paths(traced):
    import numpy as np

    nominal = traced().histories.set_index(["track_index", "sample_index"])

    def displacement(name, direction):
        h = traced(_variation(name, direction).overrides).histories.set_index(
            ["track_index", "sample_index"])
        both = (h["status"] == "reached_target") & (nominal["status"] == "reached_target")
        return (h.loc[both, ["x_m", "y_m"]] - nominal.loc[both, ["x_m", "y_m"]]).to_numpy()

    # the sweepers' magnetised yokes: centimetres at the TAX exit
    for direction in ("up", "down"):
        assert np.abs(displacement("field:sweepers", direction)).sum(axis=1).mean() > 0.01
    # TRIM5 (aperture field, no matter): a kick linear in the field, so
    # +5 % and −5 % move the paths by opposite amounts (to 10 %: upstream of
    # TRIM5 the displaced path crosses the collimators' matter differently)
    up, down = displacement("field:trims", "up"), displacement("field:trims", "down")
    moved = np.abs(up).sum(axis=1) > 0
    assert moved.any()
    np.testing.assert_allclose(up[moved], -down[moved], rtol=0.1, atol=2e-4)
    # MNP33 is downstream of STRAW1, where the backward muons start
    assert not displacement("field:spectrometer", "up").any()


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    from backtrace.prompt.pipeline import RunConfig, run_estimate
    from backtrace.tracks import Tracks, write_tracks

    path = tmp_path_factory.mktemp("syst") / "tracks.parquet"
    write_tracks(path, synthetic_tracks(8, seed=3), pot=1e9)
    return run_estimate(Tracks.open(path), RunConfig(samples_per_track=1,
                                                     interactions_per_history=1),
                        systematics="full", progress=False).document


def test_every_rerun_is_recorded(full_run):
    var = full_run["systematics"]["variations"]
    for group in (*TRACED_GROUPS, "spectrometer"):
        for d in ("up", "down"):
            run = var[f"field:{group}"]["runs"][d]
            assert any(o.endswith(".scale=" + repr(1.05 if d == "up" else 0.95))
                       for o in run["overrides"]), run["overrides"]
            assert {"total_prompt", "shift", "shift_stat", "interaction_weight"} <= set(run)
    assert var["density"]["runs"]["up"]["overrides"] and var["pot"]["kind"] == "reweight"
    # another energy-loss mode: other paths, another forced-interaction weight
    method = var["method"]["runs"]["alt"]
    assert method["energy_loss"] == "mixed" and method["interaction_weight_shift"] != 0


def test_breakdown_listed_alone_and_in_quadrature(full_run):
    syst = full_run["systematics"]
    names = ["pot", "scale:photonuclear", "scale:pair_production", "scale:mumu_pair",
             "scale:bremsstrahlung", "scale:knock_on", "invisible", "closure"] + \
        [f"field:{g}" for g in (*TRACED_GROUPS, "spectrometer")] + ["density", "method"]
    assert syst["evaluated"] == names and syst["level"] == "full"
    assert list(syst["table"]) == names + ["quadrature"]
    assert "field scale per magnet group" not in syst["not_evaluated"]
    for cats in full_run["regions"].values():
        for e in cats.values():
            assert list(e["syst_breakdown"]) == names
            assert e["syst"] == pytest.approx(
                sum(v * v for v in e["syst_breakdown"].values()) ** 0.5)
    for col, q in syst["table"]["quadrature"].items():
        assert q == pytest.approx(sum(syst["table"][n][col] ** 2 for n in names) ** 0.5)
