"""The spill model: pairing probability P₂ against analytic values, file checks."""

import numpy as np
import pytest

from backtrace.combinatorial.spill import (
    PARAMETERS,
    SpillError,
    load_spill_model,
    pairing_probability_flat,
    pairing_probability_profile,
)

W = 5e-9          # window half-width [s]


def test_flat_spill_exact_edges():
    # ∫∫ over [0,T]² of 1(|t1 - t2| < W) / T² = 2W/T - W²/T²
    assert pairing_probability_flat(1.0, 4.0) == pytest.approx(2 / 4 - 1 / 16, rel=1e-15)
    assert pairing_probability_flat(W, 4.8) == pytest.approx(2 * W / 4.8, rel=1e-8)
    with pytest.raises(SpillError, match="window"):
        pairing_probability_flat(5.0, 4.8)


def test_profile_of_a_flat_spill_equals_the_flat_formula():
    t = np.arange(0.0, 4.8, 1e-3)
    p = pairing_probability_profile(t, np.ones_like(t), W, 0.5e-9)
    assert p == pytest.approx(pairing_probability_flat(W, 4.8), rel=1e-6)


def test_resolution_does_not_change_a_smooth_spill_but_blurs_fine_structure():
    t = np.arange(0.0, 4.8, 1e-3)
    smooth = [pairing_probability_profile(t, np.ones_like(t), W, s) for s in (0.0, 1e-9, 3e-9)]
    assert np.allclose(smooth, smooth[0], rtol=1e-6)
    # two-level spill: intensity 3 in the first half, 1 in the second: ∫f² = 5/(4T)·... exact
    T = 4.8
    y = np.where(t < T / 2, 3.0, 1.0)
    f2 = (9 + 1) / 2 / T / ((3 + 1) / 2) ** 2          # ∫f² of the normalised profile
    assert pairing_probability_profile(t, y, W, 0.5e-9) == pytest.approx(2 * W * f2, rel=1e-5)
    # 1 ns bunches every 20 ns: without resolution the pairs of one bunch are all
    # in time (P₂ ~ 2W·∫f² grows by the 20/1 duty), a 10 ns resolution smears it out
    tb = np.arange(0.0, 2e-6, 1e-9)
    yb = (np.arange(len(tb)) % 20 == 0).astype(float)
    sharp = pairing_probability_profile(tb, yb, 0.5e-9, 0.0)
    blurred = pairing_probability_profile(tb, yb, 0.5e-9, 10e-9)
    flat = pairing_probability_flat(0.5e-9, 2e-6)
    # exact for the piecewise-constant profile: ∫_{-W}^{W} A = Σf²Δ²(2W/Δ − W²/Δ²)
    # (100 bunches of Δ = 1 ns, W = Δ/2): (1/100)(1 − 1/4)
    assert sharp == pytest.approx(0.75 / 100, rel=1e-12)
    assert blurred == pytest.approx(flat, rel=0.05)


def test_default_model_every_parameter_sourced():
    m = load_spill_model()
    cfg = m.config()
    assert set(cfg["parameters"]) == set(PARAMETERS)
    for name, p in cfg["parameters"].items():
        assert p["source"], name
        lo, hi = p["range"]
        assert lo <= p["value"] <= hi
        if p["estimated"]:
            assert p["source"].startswith("[est]"), name
    # T_eff = D x flat top; P₂ = 2W/T_eff (to 1e-9)
    assert m.effective_length_s == pytest.approx(0.8 * 4.8)
    assert m.pairing_probability() == pytest.approx(2 * 5e-9 / 3.84, rel=1e-8)
    # N_POT N_spill / N_sample² P₂
    assert m.pairs_per_weight(1.4e17, 1e12) == pytest.approx(
        1.4e17 * 3.5e12 / 1e24 * 2 * 5e-9 / 3.84, rel=1e-8)


BAD = {
    "no_source": ("[pot_per_spill]\nvalue = 1e12\n",
                  "pot_per_spill.source: required key missing"),
    "bad_range": ("[pot_per_spill]\nvalue = 1e12\nrange = [2e12, 3e12]\nsource = 'x'\n",
                  r"pot_per_spill.range: value 1e\+12 is outside \[2e\+12, 3e\+12\]"),
    "unknown": ("[pot_per_spil]\nvalue = 1e12\n", "pot_per_spil: unknown key"),
    "misplaced": ("[pot_per_spill]\nvalue = 1e12\nsource = 'x'\ntime_structure_file = 'a'\n",
                  "pot_per_spill.time_structure_file: .* before the first table"),
}


def _model_text(extra: str, drop: str | None = None, top: str = "") -> str:
    rows = {"pot_per_spill": 1e12, "flat_top_s": 4.8, "duty_factor": 1.0, "window_ns": 5.0,
            "time_resolution_ns": 0.5}
    text = "version = 1\nname = 'toy'\n" + top
    for k, v in rows.items():
        if k != drop:
            text += f"[{k}]\nvalue = {v}\nsource = 'toy'\n"
    return text + extra


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_files_name_the_problem(tmp_path, case):
    body, message = BAD[case]
    path = tmp_path / "spill.toml"
    path.write_text(_model_text(body, drop="pot_per_spill"))
    with pytest.raises(SpillError, match=message):
        load_spill_model(path)


def test_time_structure_file_relative_to_the_model(tmp_path):
    t = np.arange(0.0, 2.0, 0.01)
    (tmp_path / "profile.csv").write_text(
        "t_s,intensity\n" + "\n".join(f"{a:.6f},1" for a in t) + "\n")
    path = tmp_path / "spill.toml"
    path.write_text(_model_text("", top='time_structure_file = "profile.csv"\n'))
    m = load_spill_model(path)
    assert m.effective_length_s == pytest.approx(2.0, rel=1e-9)
    assert m.pairing_probability() == pytest.approx(pairing_probability_flat(5e-9, 2.0),
                                                    rel=1e-6)
    assert "flat_top_s" not in m.used_parameters()
    (tmp_path / "profile.csv").write_text("t_s,rate\n0,1\n1,1\n")
    with pytest.raises(SpillError, match="intensity"):
        load_spill_model(path)


# --- the schema (backtrace/data/spill-1.schema.json) -----------------------
@pytest.mark.parametrize("mode,edit,expected", [
    ("wrong type", ("[window_ns]\nvalue = 5.0", "[window_ns]\nvalue = '5 ns'"),
     "window_ns.value: '5 ns' is a string (expected a number > 0)"),
    ("missing required key", ("[window_ns]\nvalue = 5.0\n", "[window_ns]\n"),
     "window_ns.value: required key missing (expected a number > 0)"),
    ("missing parameter", ("[window_ns]\nvalue = 5.0\nsource = 'toy'\n", ""),
     "window_ns: required key missing (expected a table with value, source)"),
    ("negative size", ("[flat_top_s]\nvalue = 4.8", "[flat_top_s]\nvalue = -4.8"),
     "flat_top_s.value: -4.8 is out of range (expected a number > 0)"),
    ("negative range end", ("[flat_top_s]\nvalue = 4.8", "[flat_top_s]\nvalue = 4.8\n"
                                                            "range = [-1.0, 5.0]"),
     "flat_top_s.range[0]: -1.0 is out of range (expected a number > 0)"),
    ("unknown key", ("[window_ns]\nvalue = 5.0", "[window_ns]\nvalue = 5.0\nunit = 'ns'"),
     "window_ns.unit: unknown key (expected one of value, range, estimated, source)"),
    ("NaN", ("[time_resolution_ns]\nvalue = 0.5", "[time_resolution_ns]\nvalue = nan"),
     "time_resolution_ns.value: nan is not a number (expected a number > 0)"),
    ("out-of-range probability", ("[duty_factor]\nvalue = 1.0", "[duty_factor]\nvalue = 1.2"),
     "duty_factor.value: 1.2 is out of range (expected a number in (0, 1])"),
    ("out-of-range probability in the range", ("[duty_factor]\nvalue = 1.0",
                                               "[duty_factor]\nvalue = 1.0\n"
                                               "range = [0.5, 1.5]"),
     "duty_factor.range[1]: 1.5 is out of range (expected a number in (0, 1])"),
    ("empty source", ("[window_ns]\nvalue = 5.0\nsource = 'toy'",
                      "[window_ns]\nvalue = 5.0\nsource = ''"),
     "window_ns.source: empty string (expected a non-empty string)"),
    ("infinite value", ("[pot_per_spill]\nvalue = 1000000000000.0",
                        "[pot_per_spill]\nvalue = inf"),
     "pot_per_spill.value: inf is not finite (expected a finite number > 0)"),
    ("wrong version", ("version = 1", "version = 2"), "version 2 unsupported"),
])
def test_schema_errors_name_the_file_and_the_key(tmp_path, mode, edit, expected):
    """One bad input per failure mode: one line, '<file>: <key.path>: <what
    is wrong> (expected <what>)'."""
    path = tmp_path / "bad_spill.toml"
    text = _model_text("")
    assert edit[0] in text, mode
    path.write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(SpillError) as info:
        load_spill_model(path)
    message = str(info.value)
    assert "\n" not in message and expected in message, (mode, message)
    assert message.startswith(f"{path}: {expected}") or mode == "wrong version"


def test_a_window_longer_than_the_spill_is_named(tmp_path):
    path = tmp_path / "spill.toml"
    path.write_text(_model_text("").replace("[window_ns]\nvalue = 5.0",
                                            "[window_ns]\nvalue = 5e10"))
    with pytest.raises(SpillError, match=rf"^{path}: window_ns: 5e\+10 ns is longer than "
                                         r"the effective spill length 4.8 s \(expected"):
        load_spill_model(path)


def test_the_shipped_and_test_models_pass_the_schema():
    import jsonschema

    from backtrace.combinatorial.spill import SCHEMA
    from backtrace.schemas import schema

    jsonschema.Draft202012Validator.check_schema(schema(SCHEMA))
    assert set(schema(SCHEMA)["required"]) == {"version", *PARAMETERS}
    assert load_spill_model().values["duty_factor"] == 0.8
