"""Pipeline: rounds of histories (--target-rel-unc) equal one run, caps,
upper limits of empty cells, argument checks (random-key budget)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from backtrace.prompt.estimate import POISSON_ZERO_90
from backtrace.prompt.pipeline import RunConfig, run_estimate
from backtrace.tracks import Tracks, write_tracks

LOOSE = str(Path(__file__).resolve().parents[1] / "data" / "regions_loose.toml")


@pytest.fixture(scope="module")
def head40(tmp_path_factory):
    src = Path(__file__).resolve().parents[2] / "examples" / "sample.parquet"
    path = tmp_path_factory.mktemp("pipeline") / "head40.parquet"
    write_tracks(path, pd.read_parquet(src).head(40), pot=1e12 * 40 / 1419)
    return path


def _run(path, n, allocation="uniform", track_allocation="uniform", **kw):
    config = RunConfig(regions_file=LOOSE, samples_per_track=n,
                       interactions_per_history=16, allocation=allocation,
                       track_allocation=track_allocation)
    return run_estimate(Tracks.open(path), config, systematics="none",
                        progress=False, **kw).document


@pytest.fixture(scope="module")
def single4(head40):
    """(A fixed allocation: rounds then equal one run; 'auto' changes it.)"""
    return _run(head40, 4)


def _values(doc):
    return {(r, c): (e["value"], e["stat"], e["n_mc"])
            for r, cats in doc["regions"].items() for c, e in cats.items()}


def test_rounds_equal_one_run_with_the_total_and_the_cap_stops(head40, single4):
    assert single4["candidates"] > 0, "the loose selection must give candidates"
    rounds = _run(head40, 2, target_rel_unc=1e-6, max_samples_per_track=4)
    mc = rounds["mc"]
    assert mc["stopped_by"] == "max_samples" and mc["samples_per_track"] == 4
    assert [r["samples_per_track"] for r in mc["rounds"]] == [2, 4]
    assert rounds["config"]["samples_per_track"] == 4
    a, b = _values(single4), _values(rounds)
    for key in a:
        assert b[key][0] == pytest.approx(a[key][0], rel=1e-12, abs=1e-300)
        assert b[key][1] == pytest.approx(a[key][1], rel=1e-12, abs=1e-300)
        assert b[key][2] == a[key][2]
    assert rounds["interactions"] == single4["interactions"]
    assert rounds["tracks"] == single4["tracks"]
    assert mc["rel_unc"] == pytest.approx(single4["mc"]["rel_unc"], rel=1e-9)


def test_target_reached_reports_what_it_achieved(head40, single4):
    # the rel. unc. of one run with 4 histories per track is reached at the
    # latest by the 4-history round (rounds equal that run): the target stops it
    target = single4["mc"]["rel_unc"] * (1 + 1e-9)
    doc = _run(head40, 2, target_rel_unc=target, max_samples_per_track=4)
    mc = doc["mc"]
    assert mc["stopped_by"] == "target"
    assert mc["rel_unc"] <= target and mc["target_rel_unc"] == target
    first = mc["rounds"][0]["rel_unc"]
    if first is None or first > target:
        assert len(mc["rounds"]) >= 2
    assert 0 < mc["total_prompt_mc"] and mc["total_prompt"] > 0


def test_time_cap_stops_after_the_first_round(head40):
    doc = _run(head40, 1, target_rel_unc=1e-6, max_time_s=1e-3)
    assert doc["mc"]["stopped_by"] == "max_time" and len(doc["mc"]["rounds"]) == 1


def test_empty_cells_get_limits_from_the_category_weight_per_entry(single4):
    per_entry = single4["upper_limit_weight_per_entry"]
    empty = [(r, c) for r, cats in single4["regions"].items()
             for c, e in cats.items() if e["n_mc"] == 0]
    assert empty, "expected at least one empty cell"
    for region, cat in empty:
        entry = single4["regions"][region][cat]
        assert entry["value"] == 0
        assert entry["upper_limit_90"] == pytest.approx(
            POISSON_ZERO_90 * per_entry[cat]["weight"], rel=1e-12)
    assert "two-track pairs in the STRAW acceptance that could be selected" in \
        single4["upper_limit_method"]


@pytest.mark.parametrize("kw,message", [
    ({"systematics": "some"}, "systematics"),
    ({"target_rel_unc": 0.0}, "must be > 0"),
    ({"max_samples_per_track": 20000}, "16384"),
])
def test_bad_arguments(head40, kw, message):
    args = {"systematics": "none", "progress": False, **kw}
    with pytest.raises(ValueError, match=message):
        run_estimate(Tracks.open(head40), RunConfig(samples_per_track=4), **args)


def test_forcing_a_subset_of_processes(head40):
    """--processes: only the named processes are forced (in expectation the
    estimates over disjoint subsets add up to the one over their union)."""
    config = RunConfig(regions_file=LOOSE, samples_per_track=2, interactions_per_history=2,
                       processes=("bremsstrahlung",))
    doc = run_estimate(Tracks.open(head40), config, systematics="none",
                       progress=False).document
    assert doc["config"]["processes"] == ["bremsstrahlung"]
    assert doc["interactions"] > 0
    with pytest.raises(ValueError, match="magic"):
        RunConfig(processes=("magic",))
    with pytest.raises(ValueError, match="one or more"):
        RunConfig(processes=())


def test_interaction_weights_carry_the_incoming_muon_veto(head40, tmp_path):
    """The same forced draws (natural plan: no veto-aware importance) with
    and without the LAV vetoes: their weights differ exactly by Π ε over the
    LAVs the incoming muon crossed upstream of the interaction, and some
    muons did cross one."""
    import numpy as np

    from backtrace.interactions.forced import DrawPlan
    from backtrace.prompt.pipeline import Pipeline
    from backtrace.regions import load_regions

    text = Path(LOOSE).read_text()
    no_veto = tmp_path / "no_veto.toml"
    no_veto.write_text(text.replace("[selection]", "[selection]\nvetoes = []", 1))
    with_veto = tmp_path / "lav.toml"
    with_veto.write_text(text.replace("[selection]", '[selection]\nvetoes = ["LAV*"]', 1))
    assert load_regions(with_veto).selection["vetoes"] == ["LAV*"]
    batch = next(Tracks.open(head40).iter_batches(40))
    out = {}
    for name, regions in (("none", no_veto), ("lav", with_veto)):
        p = Pipeline(RunConfig(regions_file=str(regions), samples_per_track=2))
        states = p.tracer.trace(batch).states
        hw = states.groupby(["track_index", "sample_index"]).size() * 0 + 1.0
        out[name] = (p.sampler.draws(states, 1, hw, DrawPlan("natural", 2.0))[0], p, states)
    (a, _, _), (b, p_lav, states) = out["none"], out["lav"]
    assert list(a["interaction"]) == list(b["interaction"])
    expected = np.exp(p_lav.response.incoming_log_survival(states, a.reset_index(drop=True)))
    np.testing.assert_allclose(b["weight"].to_numpy(), a["weight"].to_numpy() * expected,
                               rtol=1e-12)
    assert (expected < 1).any() and (expected == 1).any()


def _category_sums(doc):
    """{category: (Σ value over regions, MC error)}."""
    import numpy as np

    return {cat: (sum(doc["regions"][r][cat]["value"] for r in doc["regions"]),
                  float(np.sqrt(sum(doc["regions"][r][cat]["mc"] ** 2
                                    for r in doc["regions"]))))
            for cat in ("mu-mu", "mu-pi", "other")}


def test_stratified_estimate_equals_the_plain_forced_one(head40):
    """The trident and bremsstrahlung forced with shares 0.5/0.5 (each
    interaction weighted P_p/q_p) against plain forcing of each alone
    (estimates over disjoint process sets add up): the same histories (one
    per track, same seed), so the two differ only by the forcing, whose
    spread the MC error holds (K = 64 repeats). Per category they agree
    within 3 combined MC errors. (That dropping 1/q_p fails is tested on
    the forced weights, tests/interactions/test_forced.py.)"""
    import numpy as np

    def run(processes, allocation):
        config = RunConfig(regions_file=LOOSE, samples_per_track=1,
                           interactions_per_history=64, processes=processes,
                           allocation=allocation)
        return _category_sums(run_estimate(Tracks.open(head40), config,
                                           systematics="none", progress=False).document)

    strat = run(("mumu_pair", "bremsstrahlung"),
                (("mumu_pair", 0.5), ("bremsstrahlung", 0.5)))
    alone = [run((p,), "natural") for p in ("mumu_pair", "bremsstrahlung")]
    assert strat["mu-mu"][0] > 0
    for cat in strat:
        plain = sum(a[cat][0] for a in alone)
        err = np.sqrt(strat[cat][1] ** 2 + sum(a[cat][1] ** 2 for a in alone))
        assert abs(strat[cat][0] - plain) <= 3 * err, cat


def test_importance_estimate_equals_the_plain_forced_one(head40):
    """The default variance reduction — a pilot round, then an importance
    round (draws ∝ track weight × path importance × each stratum's
    outcome), veto-aware points, the energy-transfer bias — against plain
    forcing of each process alone (no strata, no bias, 64 draws per
    history): per category the two agree within 3 combined MC errors.
    (Dropping an allocation, veto or bias weight is caught on the draws
    themselves, tests/interactions/test_forced.py.)"""
    import numpy as np

    procs = ("mumu_pair", "bremsstrahlung")
    config = RunConfig(regions_file=LOOSE, samples_per_track=2, interactions_per_history=16,
                       processes=procs, track_allocation="uniform")
    doc = run_estimate(Tracks.open(head40), config, systematics="none", progress=False,
                       target_rel_unc=1e-6, max_samples_per_track=4,
                       target_cell=None).document
    modes = [r["allocation"]["mode"] for r in doc["mc"]["rounds"]]
    assert modes == ["track", "global"]
    vr = _category_sums(doc)
    alone = []
    for p in procs:
        plain = RunConfig(regions_file=LOOSE, samples_per_track=1, interactions_per_history=64,
                          processes=(p,), allocation="natural")
        alone.append(_category_sums(run_estimate(Tracks.open(head40), plain,
                                                 systematics="none",
                                                 progress=False).document))
    assert vr["mu-mu"][0] > 0
    for cat in vr:
        plain = sum(a[cat][0] for a in alone)
        err = np.sqrt(vr[cat][1] ** 2 + sum(a[cat][1] ** 2 for a in alone))
        assert abs(vr[cat][0] - plain) <= 3 * err, cat
    rates = doc["mc"]["rounds"][1]["allocation"]["rates"]
    assert rates and max(rates, key=rates.get).startswith("mumu_pair@")
    forcing = doc["mc"]["forcing"]
    assert {r["process"] for r in forcing["processes"]} == set(procs)
    assert sum(r["draws"] for r in forcing["strata"]) == sum(
        r["draws"] for r in forcing["processes"])


def test_rounds_give_histories_in_proportion_to_the_track_weights(head40):
    """With track_allocation 'weight' (default), rounds after the first
    double the histories of the tracks furthest below their weight share:
    the heavy tracks get them, the total stays below a uniform doubling, and
    the output records the counts."""
    config = RunConfig(regions_file=LOOSE, samples_per_track=2, interactions_per_history=4,
                       allocation="natural")
    doc = run_estimate(Tracks.open(head40), config, systematics="none", progress=False,
                       target_rel_unc=1e-6, max_samples_per_track=8).document
    rounds = doc["mc"]["rounds"]
    assert [r["samples_per_track"] for r in rounds[:3]] == [2, 4, 8]
    assert rounds[0]["tracks_in_round"] == 40 and 0 < rounds[1]["tracks_in_round"] < 40
    assert rounds[0]["histories"] == 80 < rounds[1]["histories"] < 160
    assert rounds[1]["histories_per_track_mean"] == pytest.approx(rounds[1]["histories"] / 40)
    # rounds go on until every track has the cap (the target is out of reach)
    assert doc["mc"]["stopped_by"] == "max_samples" and doc["mc"]["histories"] == 8 * 40
    from backtrace.output.report import _histories
    assert _histories(rounds[1] | {"samples_per_track": 4}) == (
        f"{rounds[1]['histories_per_track_mean']:.3g} histories/track on average "
        "(up to 4, in proportion to the track weights)")


def test_draws_in_groups_of_tracks_give_the_same_estimate(head40, single4, monkeypatch):
    """Pipeline.forced takes the tracks in groups of about
    MAX_DRAWS_PER_GROUP expected draws (memory); 40 tracks × 4 histories ×
    16 draws in groups of ~100 draws (one or two tracks each) give the
    same candidates and interactions to the last bit."""
    import backtrace.prompt.pipeline as pipeline

    monkeypatch.setattr(pipeline, "MAX_DRAWS_PER_GROUP", 100)
    grouped = _run(head40, 4)
    a, b = _values(single4), _values(grouped)
    assert a == b
    assert grouped["interactions"] == single4["interactions"] > 1000
    assert grouped["interaction_weight"] == single4["interaction_weight"]


def test_every_cell_splits_by_forced_process_and_the_parts_add_up(single4):
    """background.json → regions.R.C.by_process: one entry per forced
    process (zeros included), the values and zones add up to the cell."""
    processes = single4["config"]["processes"]
    nonzero = 0
    for region, cats in single4["regions"].items():
        for cat, cell in cats.items():
            parts = cell["by_process"]
            assert list(parts) == processes, (region, cat)
            assert sum(p["value"] for p in parts.values()) == \
                pytest.approx(cell["value"], rel=1e-12, abs=1e-300)
            assert sum(p["n_mc"] for p in parts.values()) == cell["n_mc"]
            for zone in ("prompt", "upstream_prompt"):
                assert sum(p[zone] for p in parts.values()) == \
                    pytest.approx(cell[zone], rel=1e-12, abs=1e-300)
            nonzero += sum(p["value"] > 0 for p in parts.values())
            assert all(p["mc"] >= 0 for p in parts.values())
    assert nonzero >= 2


def test_limits_of_empty_cells_shrink_as_one_over_the_histories(head40, single4):
    """The weight an entry would carry (w̄ of the limits) is a history's
    share of its track: 4× the histories per track, about ¼ of w̄ (the
    same tracks; the pairs themselves fluctuate), and no limit exceeds the
    largest measured cell."""
    more = _run(head40, 16)
    for cat in ("mu-mu",):
        w4 = single4["upper_limit_weight_per_entry"][cat]
        w16 = more["upper_limit_weight_per_entry"][cat]
        assert w16["n"] > 2 * w4["n"] > 0
        assert w4["weight"] / w16["weight"] == pytest.approx(4.0, rel=0.35)
    largest = max(c["value"] for cats in more["regions"].values() for c in cats.values())
    limits = [c["upper_limit_90"] for cats in more["regions"].values() for c in cats.values()
              if c["upper_limit_90"] is not None]
    assert limits and max(limits) < largest


@pytest.mark.parametrize("physics,expected", [
    ("full", {"photonuclear", "pair_production", "mumu_pair", "bremsstrahlung", "knock_on"}),
    ("geant4-default", {"photonuclear", "pair_production", "knock_on"}),
])
def test_each_physics_set_forces_exactly_its_processes(head40, physics, expected):
    """The draws of a run are of the set's processes, every one of them
    (a dropped process or one outside the set fails), and the document
    records the set."""
    config = RunConfig(regions_file=LOOSE, samples_per_track=1, interactions_per_history=8,
                       allocation="uniform", physics=physics)
    doc = run_estimate(Tracks.open(head40), config, systematics="none",
                       progress=False).document
    drawn = {p["process"] for p in doc["mc"]["forcing"]["processes"] if p["draws"] > 0}
    assert drawn == expected
    assert set(doc["config"]["processes"]) == expected and doc["config"]["physics"] == physics
    cands = set(doc["regions"]["outside"]["mu-mu"]["by_process"])
    assert cands == expected


def test_a_process_outside_the_physics_set_is_refused():
    with pytest.raises(ValueError, match="mumu_pair: not in the physics set 'geant4-default'"):
        RunConfig(physics="geant4-default", processes=("mumu_pair",))
    with pytest.raises(ValueError, match="physics 'geant5'"):
        RunConfig(physics="geant5")
    assert RunConfig(physics="geant4-default", channel="ee").forced_processes() == (
        "photonuclear", "pair_production", "knock_on", "photon_conversion")


def test_a_target_of_several_cells_waits_for_the_worst(head40):
    """--target-cell outside/mu-mu,CR/mu-mu: each round records every cell,
    and the target's value and relative error are the worst cell's."""
    doc = _run(head40, 2, target_rel_unc=1e-6, max_samples_per_track=4,
               target_cell=(("outside", "mu-mu"), ("CR", "mu-mu")))
    mc = doc["mc"]
    assert mc["target_cell"] == "outside/mu-mu,CR/mu-mu"
    cells = mc["cells"]
    assert set(cells) == {"outside/mu-mu", "CR/mu-mu"}
    rels = [c["rel_unc"] for c in cells.values()]
    worst = max(r if r is not None else float("inf") for r in rels)
    assert (mc["rel_unc"] or float("inf")) == pytest.approx(worst)
    for label, c in cells.items():
        region, cat = label.split("/")
        assert c["value"] == pytest.approx(doc["regions"][region][cat]["value"], rel=1e-12)
    assert all("cells" in r for r in mc["rounds"])
