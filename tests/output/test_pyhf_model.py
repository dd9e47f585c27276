"""background.pyhf.json: a valid pyhf workspace that takes a signal and
gives a hypothesis test (backtrace.output.pyhf_model)."""

import json

import pytest

from backtrace.output.pyhf_model import (
    POI,
    SIGNAL,
    build_workspace,
    parse_signal,
    signal_patch,
    with_signal,
    write_model,
)

pyhf = pytest.importorskip("pyhf")


def _doc():
    """A document with the summary of a hand-set background model."""
    cell = lambda v, s, n=3: {"value": v, "stat": s, "n_mc": n,            # noqa: E731
                              "upper_limit_90": None if n else 2.3}
    regions = {"SR": {"combinatorial": {**cell(0.016, 0.002), "syst": 0.002},
                      "prompt": cell(0.0, 0.0, 0), "upstream_prompt": cell(0.003, 0.002),
                      "total": {"value": 0.019, "stat": 0.003, "syst": 0.003}},
               "CR": {"combinatorial": {**cell(0.17, 0.02), "syst": 0.03},
                      "prompt": cell(0.002, 0.001), "upstream_prompt": cell(0.03, 0.02),
                      "total": {"value": 0.202, "stat": 0.03, "syst": 0.04}}}
    return {"config": {"regions": {"region": [{"name": "SR"}, {"name": "CR"}]}},
            "systematics": {"table": {"pot": {"SR": 0.0006, "CR": 0.006},
                                      "density": {"SR": 0.0003, "CR": 0.003},
                                      "quadrature": {"SR": 0.0007, "CR": 0.007}}},
            "combinatorial": {"systematics": {"relative": {
                "pot_per_spill": [-0.34, 0.89], "window_ns": [-0.5, 1.0],
                "time_resolution_ns": [0.0, 0.0], "pot": [-0.2, 0.2]}}},
            "summary": {"combinatorial_included": True, "regions": regions}}


def test_workspace_is_valid_and_has_every_component():
    spec = build_workspace(_doc())
    pyhf.schema.validate(spec, "workspace.json")
    ws = pyhf.Workspace(spec)
    assert ws.channels == ["CR", "SR"]
    assert set(ws.samples) == {"combinatorial", "prompt", "upstream_prompt", SIGNAL}
    sr = next(c for c in spec["channels"] if c["name"] == "SR")
    comb = next(s for s in sr["samples"] if s["name"] == "combinatorial")
    mods = {m["name"]: m for m in comb["modifiers"]}
    assert mods["mcstat_SR"] == {"name": "mcstat_SR", "type": "staterror", "data": [0.002]}
    assert mods["spill_pot_per_spill"]["data"] == pytest.approx({"hi": 1.89, "lo": 0.66})
    assert "spill_time_resolution_ns" not in mods          # no effect: no modifier
    assert mods["pot_normalisation"]["data"] == {"hi": 1.2, "lo": 0.8}
    empty = next(s for s in sr["samples"] if s["name"] == "prompt")
    assert empty == {"name": "prompt", "data": [0.0], "modifiers": []}
    # background-only model builds (no POI)
    model = ws.model(poi_name=None)
    assert model.expected_actualdata(model.config.suggested_init())[0] == pytest.approx(0.202)


def test_the_workspace_loads_as_written(tmp_path):
    """The file as written builds a model with its POI (a signal sample of
    0 events carries mu_sig), and the observations are the background."""
    path = write_model(tmp_path / "background.pyhf.json", _doc())
    ws = pyhf.Workspace(json.loads(path.read_text()))
    model = ws.model()
    assert model.config.poi_name == POI
    assert model.expected_actualdata(model.config.suggested_init())[0] == pytest.approx(0.202)
    assert ws.data(model, include_auxdata=False) == pytest.approx([0.202, 0.019])


def test_signal_by_option_and_by_json_patch_are_the_same(tmp_path):
    jsonpatch = pytest.importorskip("jsonpatch")
    spec = build_workspace(_doc())
    signal = parse_signal(["SR=5", "CR=0.5"])
    patched = jsonpatch.apply_patch(spec, signal_patch(spec, signal))
    assert patched == with_signal(spec, signal) == build_workspace(_doc(), signal)
    path = write_model(tmp_path / "w.json", _doc(), signal)
    assert json.loads(path.read_text()) == patched
    with pytest.raises(ValueError, match="signal region.*XR.*the workspace has CR, SR"):
        signal_patch(spec, {"XR": 1.0})
    with pytest.raises(ValueError, match="expected REGION=EVENTS"):
        parse_signal(["SR:5"])


def test_toy_signal_hypothesis_test():
    spec = with_signal(build_workspace(_doc()), {"SR": 5.0, "CR": 0.5})
    ws = pyhf.Workspace(spec)
    model = ws.model()
    data = ws.data(model)
    cls_obs = float(pyhf.infer.hypotest(1.0, data, model, test_stat="qtilde"))
    # 5 signal events on ~0.02 background, with data = the background: excluded
    assert 0 < cls_obs < 0.05
    cls_small = float(pyhf.infer.hypotest(0.2, data, model, test_stat="qtilde"))
    assert cls_small > cls_obs
