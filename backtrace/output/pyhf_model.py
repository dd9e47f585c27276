"""The background model as a pyhf (HistFactory JSON) workspace:
``background.pyhf.json``.

From the ``summary`` block of ``background.json`` (:mod:`backtrace.output.summary`):

- one **channel** per region of the regions file (SR, CR; one bin each);
- one **sample** per background component (combinatorial, prompt,
  upstream_prompt) with its expected events;
- **MC statistics** as ``staterror`` (``mcstat_<region>``, the sample's
  absolute statistical error; pyhf combines the samples of a channel);
- each **systematic** as a ``normsys``: the POT normalisation
  (``pot_normalisation``, ±20 %, every sample, correlated), each spill-model
  parameter on the combinatorial sample (``spill_<parameter>``: the factors
  at the ends of its range as the ±1σ variations), each systematic of the
  prompt estimate (``prompt_<variation>``: its relative size for the
  region's prompt total, on prompt and upstream_prompt, symmetric);
- a **signal** sample in every channel with the normfactor ``mu_sig`` (the
  POI of the measurement ``background``), 0 expected events as written, so
  that ``pyhf.Workspace(spec).model()`` builds as the file is; the signal
  expectation is the user's: ``backtrace report DIR --signal SR=5.2`` (or
  :func:`with_signal`) writes it, and :func:`signal_patch` gives the same
  change as an RFC 6902 JSON Patch (``pyhf cls background.pyhf.json --patch
  signal.json``; applied by the ``jsonpatch`` package pyhf depends on);
- **observations**: the expected background of each channel (an Asimov
  placeholder for a blind analysis: replace them with the observed counts).

An empty cell (a 90 % CL limit, no entry) enters as 0 expected events
without modifiers: a HistFactory sample cannot hold a limit, which stays in
``background.json``. The workspace is validated against pyhf's own schema
when pyhf is installed (``pip install 'backtrace[pyhf]'``).
"""

from __future__ import annotations

from pathlib import Path

from backtrace.io import write_json_atomic
from backtrace.prompt.systematics import POT_RELATIVE

__all__ = ["build_workspace", "write_model", "validate_workspace", "POI", "SIGNAL",
           "with_signal", "signal_patch", "parse_signal"]

POI = "mu_sig"
#: The name of the signal sample (its normfactor is the POI).
SIGNAL = "signal"
#: A normsys factor never goes below this (pyhf's interpolation needs > 0).
MIN_FACTOR = 1e-3


def _factor(x: float) -> float:
    return max(float(x), MIN_FACTOR)


def _sample(name, region, entry, modifiers) -> dict:
    value = float(entry["value"]) if entry.get("upper_limit_90") is None else 0.0
    mods = []
    if value > 0:
        mods.append({"name": f"mcstat_{region}", "type": "staterror",
                     "data": [float(entry["stat"])]})
        mods += modifiers
    return {"name": name, "data": [value], "modifiers": mods}


def _prompt_normsys(doc: dict, region: str) -> list[dict]:
    table = doc.get("systematics", {}).get("table", {})
    cells = doc["summary"]["regions"][region]
    total = cells["prompt"]["value"] + cells["upstream_prompt"]["value"]
    out = []
    for name, col in table.items():
        if name in ("quadrature", "pot") or total <= 0:
            continue
        rel = abs(float(col.get(region, 0.0))) / total
        if rel > 0:
            out.append({"name": f"prompt_{name.replace(':', '_')}", "type": "normsys",
                        "data": {"hi": _factor(1 + rel), "lo": _factor(1 - rel)}})
    return out


def _spill_normsys(doc: dict) -> list[dict]:
    rel = doc["combinatorial"]["systematics"]["relative"]
    return [{"name": f"spill_{p}", "type": "normsys",
             "data": {"hi": _factor(1 + hi), "lo": _factor(1 + lo)}}
            for p, (lo, hi) in rel.items() if p != "pot" and (lo or hi)]


def _signal_sample(events: float = 0.0) -> dict:
    return {"name": SIGNAL, "data": [float(events)],
            "modifiers": [{"name": POI, "type": "normfactor", "data": None}]}


def build_workspace(doc: dict, signal: dict | None = None) -> dict:
    """The pyhf workspace (module docstring) of a document with a summary;
    ``signal``: {region: expected signal events at mu_sig = 1} (default 0)."""
    summ = doc["summary"]
    regions = [r["name"] for r in doc["config"]["regions"].get("region", [])
               if r["name"] in summ["regions"]]
    pot = {"name": "pot_normalisation", "type": "normsys",
           "data": {"hi": 1 + POT_RELATIVE, "lo": 1 - POT_RELATIVE}}
    channels, observations = [], []
    for region in regions:
        cells = summ["regions"][region]
        samples = []
        if summ["combinatorial_included"]:
            samples.append(_sample("combinatorial", region, cells["combinatorial"],
                                   [pot, *_spill_normsys(doc)]))
        prompt_sys = [pot, *_prompt_normsys(doc, region)]
        samples.append(_sample("prompt", region, cells["prompt"], prompt_sys))
        samples.append(_sample("upstream_prompt", region, cells["upstream_prompt"],
                               prompt_sys))
        channels.append({"name": region, "samples": samples})
        samples.append(_signal_sample((signal or {}).get(region, 0.0)))
        observations.append({"name": region, "data": [float(sum(
            s["data"][0] for s in samples if s["name"] != SIGNAL))]})
    return {"version": "1.0.0", "channels": channels, "observations": observations,
            "measurements": [{"name": "background",
                              "config": {"poi": POI, "parameters": []}}]}


def validate_workspace(spec: dict) -> bool:
    """Check ``spec`` against pyhf's workspace schema; False when pyhf is
    not installed (the check is skipped), a ValueError when it fails."""
    try:
        import pyhf
    except ImportError:
        return False
    import warnings

    try:
        with warnings.catch_warnings():
            # pyhf 0.7 uses jsonschema's deprecated RefResolver (not ours)
            warnings.filterwarnings("ignore", "jsonschema.RefResolver is deprecated",
                                    DeprecationWarning)
            pyhf.schema.validate(spec, "workspace.json")
    except pyhf.exceptions.InvalidSpecification as err:
        raise ValueError(f"background.pyhf.json does not match pyhf's schema: {err}") from None
    return True


def write_model(path, doc: dict, signal: dict | None = None) -> Path:
    """Write ``background.pyhf.json`` (validated when pyhf is installed);
    ``signal``: {region: expected signal events} (default 0 everywhere)."""
    spec = build_workspace(doc)
    if signal:
        spec = with_signal(spec, signal)
    validate_workspace(spec)
    return write_json_atomic(Path(path), spec)


def _signal_places(spec: dict) -> dict:
    """{region: (channel index, sample index)} of the signal samples."""
    out = {}
    for i, ch in enumerate(spec["channels"]):
        for j, sample in enumerate(ch["samples"]):
            if sample["name"] == SIGNAL:
                out[ch["name"]] = (i, j)
    return out


def _check_regions(spec: dict, signal: dict) -> dict:
    places = _signal_places(spec)
    unknown = sorted(set(signal) - set(places))
    if unknown:
        raise ValueError(f"signal region(s) {', '.join(unknown)}: the workspace has "
                         f"{', '.join(sorted(places))}")
    bad = [r for r, v in signal.items() if not float(v) >= 0]
    if bad:
        raise ValueError(f"signal in {', '.join(bad)}: expected events >= 0")
    return places


def signal_patch(spec: dict, signal: dict) -> list[dict]:
    """An RFC 6902 JSON Patch setting the signal sample of each region of
    ``signal`` ({region: expected events at mu_sig = 1})."""
    places = _check_regions(spec, signal)
    return [{"op": "replace", "path": f"/channels/{i}/samples/{j}/data",
             "value": [float(signal[r])]}
            for r, (i, j) in sorted(places.items()) if r in signal]


def with_signal(spec: dict, signal: dict) -> dict:
    """A copy of ``spec`` with the signal expectation of each region of
    ``signal`` (what :func:`signal_patch` does)."""
    import copy

    out = copy.deepcopy(spec)
    for op in signal_patch(spec, signal):
        _, _, i, _, j, _ = op["path"].split("/")
        out["channels"][int(i)]["samples"][int(j)]["data"] = op["value"]
    return out


def parse_signal(items) -> dict:
    """``["SR=5.2", "CR=0.4"]`` → {"SR": 5.2, "CR": 0.4} (ValueError naming
    the bad item)."""
    out = {}
    for item in items or ():
        region, sep, value = str(item).partition("=")
        try:
            out[region.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not region.strip():
            raise ValueError(f"--signal {item!r}: expected REGION=EVENTS, e.g. SR=5.2")
    return out
