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
- the measurement ``background`` with the POI ``mu_sig`` (a signal sample
  with ``{"type": "normfactor", "name": "mu_sig"}`` is the user's to add);
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

__all__ = ["build_workspace", "write_model", "validate_workspace", "POI"]

POI = "mu_sig"
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


def build_workspace(doc: dict) -> dict:
    """The pyhf workspace (module docstring) of a document with a summary."""
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
        observations.append({"name": region,
                             "data": [float(sum(s["data"][0] for s in samples))]})
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


def write_model(path, doc: dict) -> Path:
    """Write ``background.pyhf.json`` (validated when pyhf is installed)."""
    spec = build_workspace(doc)
    validate_workspace(spec)
    return write_json_atomic(Path(path), spec)
