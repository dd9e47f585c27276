"""The packaged JSON schemas of the TOML input files, and the check against them.

Each kind of input file has a versioned JSON schema (draft 2020-12) in
``backtrace/data``, next to the packaged files it describes:
``selection-1.schema.json`` (selection and regions, :mod:`backtrace.regions`),
``spill-1.schema.json`` (spill models, :mod:`backtrace.combinatorial.spill`)
and ``measured-1.schema.json`` (study results, :mod:`backtrace.prompt.measured`).
A loader calls :func:`check_against_schema` on the parsed file before it
uses any value; the first problem is raised as the loader's own error
class, in one line that names the file and the key:

    <file>: <key.path>: <what is wrong> (expected <what>)

Array items are written ``key[i]`` (counted from 0). Problems are reported
in the file's order: the first key at fault, a missing key after the keys
that are there.

NaN is not a number here: JSON has none, TOML has (``nan``), and a NaN
passes every comparison silently, so a ``"type": "number"`` rejects it.
Infinities pass where the schema sets no bound (``muon_id_ep_max = inf``:
no E/p cut).
"""

from __future__ import annotations

import fnmatch
import json
import math
from functools import lru_cache
from importlib import resources

import jsonschema

__all__ = ["check_against_schema", "schema", "key_path"]

_BASE = jsonschema.Draft202012Validator


def _is_number(checker, instance) -> bool:
    return (_BASE.TYPE_CHECKER.is_type(instance, "number")
            and not (isinstance(instance, float) and math.isnan(instance)))


#: Draft 2020-12 with NaN excluded from "number" (module docstring).
_Validator = jsonschema.validators.extend(
    _BASE, type_checker=_BASE.TYPE_CHECKER.redefine("number", _is_number))


@lru_cache(maxsize=None)
def schema(name: str) -> dict:
    """The packaged schema ``backtrace/data/<name>``."""
    return json.loads((resources.files("backtrace.data") / name).read_text())


@lru_cache(maxsize=None)
def _validator(name: str):
    return _Validator(schema(name))


def key_path(path) -> str:
    """``selection.vetoes[0]`` from the path (keys and indices) of a value."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def check_against_schema(raw: dict, schema_name: str, where: str, error: type,
                         hints: dict | None = None) -> None:
    """Validate the parsed file ``raw`` against the packaged schema
    ``schema_name``; raise ``error`` with the one-line message of the first
    problem in file order (module docstring). ``where`` names the file.
    ``hints``: {key-path pattern (fnmatch): (what is wrong, expected)} that
    replace the generic text for an unknown or misplaced key."""
    errors = list(_validator(schema_name).iter_errors(raw))
    if not errors:
        return
    err = min(errors, key=lambda e: _file_order(raw, e))
    path, what, expected = _explain(err, schema(schema_name))
    where_key = key_path(path)
    for pattern, (hint_what, hint_expected) in (hints or {}).items():
        if fnmatch.fnmatchcase(where_key, pattern):
            what, expected = hint_what, hint_expected
            break
    raise error(f"{where}: {where_key}: {what} (expected {expected})")


# ---------------------------------------------------------------------------
# Error order and wording
# ---------------------------------------------------------------------------
def _file_order(raw, err) -> tuple:
    """Sort key of an error: the positions of its keys in the file; on an
    object, an unknown key at its place, a missing key after the others."""
    node, order = raw, []
    for p in err.absolute_path:
        order.append(list(node).index(p) if isinstance(node, dict) else p)
        node = node[p]
    if isinstance(node, dict) and err.validator == "additionalProperties":
        known = err.schema.get("properties", {})
        order.append(min(i for i, k in enumerate(node) if k not in known))
    elif isinstance(node, dict) and err.validator in ("required", "dependentRequired"):
        order.append(len(node))
    else:
        order.append(-1)
    return tuple(order)


def _explain(err, root: dict) -> tuple[list, str, str]:
    """(key path, what is wrong, what was expected) of a validation error."""
    path, value, sub = list(err.absolute_path), err.instance, _resolve(err.schema, root)
    kind = err.validator
    if kind == "additionalProperties":
        known = sub.get("properties", {})
        extra = next(k for k in value if k not in known)
        return path + [extra], "unknown key", "one of " + ", ".join(known)
    if kind in ("required", "dependentRequired"):
        if kind == "required":
            missing = [k for k in err.validator_value if k not in value]
            because = "required key missing"
        else:
            trigger, missing = next((t, [k for k in deps if k not in value])
                                    for t, deps in err.validator_value.items()
                                    if t in value and any(k not in value for k in deps))
            because = f"missing, required with {trigger}"
        prop = _resolve(sub.get("properties", {}).get(missing[0], {}), root)
        return path + [missing[0]], because, describe(prop, root)
    expected = describe(sub, root)
    if kind == "type":
        if isinstance(value, float) and math.isnan(value):
            return path, "nan is not a number", expected
        return path, f"{_show(value)} is {_toml_kind(value)}", expected
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return path, f"{_show(value)} is out of range", expected
    if kind in ("enum", "const"):
        return path, f"{_show(value)} is not allowed", expected
    if kind in ("minItems", "maxItems", "items"):
        return path, f"{len(value)} item(s)", expected
    if kind == "minLength":
        return path, "empty string", expected
    return path, err.message, expected


def _resolve(sub, root: dict) -> dict:
    """A schema with its local ``$ref`` (``#/$defs/...``) followed."""
    while isinstance(sub, dict) and "$ref" in sub:
        node = root
        for part in sub["$ref"].lstrip("#/").split("/"):
            node = node[part]
        sub = {**node, **{k: v for k, v in sub.items() if k != "$ref"}}
    return sub if isinstance(sub, dict) else {}


_NOUNS = {"number": ("a number", "numbers"), "integer": ("an integer", "integers"),
          "string": ("a string", "strings"), "boolean": ("true or false", "booleans"),
          "array": ("a list", "lists"), "object": ("a table", "tables")}


def describe(sub: dict, root: dict, plural: bool = False) -> str:
    """What a (sub)schema accepts, in words: 'a number > 0', 'a list of 2
    numbers > 0', 'one of "both", "one", "none"'."""
    sub = _resolve(sub, root)
    if "const" in sub:
        return json.dumps(sub["const"])
    if "enum" in sub:
        return "one of " + ", ".join(json.dumps(v) for v in sub["enum"])
    kind = sub.get("type", "")
    noun = _NOUNS.get(kind, ("a value", "values"))[1 if plural else 0]
    if kind in ("number", "integer"):
        return noun + _bounds(sub)
    if kind == "string" and sub.get("minLength"):
        return ("non-empty " + noun) if plural else "a non-empty string"
    if kind == "object" and sub.get("required"):
        return f"{noun} with {', '.join(sub['required'])}"
    if kind == "array":
        n_min, n_max = sub.get("minItems"), sub.get("maxItems")
        if "prefixItems" in sub:
            return f"{noun} [" + ", ".join(describe(s, root) for s in sub["prefixItems"]) + "]"
        count = f"{n_min} " if n_min is not None and n_min == n_max else \
            ("one or more " if n_min == 1 and n_max is None else "")
        items = sub.get("items")
        return f"{noun} of {count}{describe(items, root, plural=True)}" if items else noun
    return noun


def _bounds(sub: dict) -> str:
    low = (">", sub["exclusiveMinimum"]) if "exclusiveMinimum" in sub else \
        (">=", sub["minimum"]) if "minimum" in sub else None
    high = ("<", sub["exclusiveMaximum"]) if "exclusiveMaximum" in sub else \
        ("<=", sub["maximum"]) if "maximum" in sub else None
    if low and high:
        left = "(" if low[0] == ">" else "["
        right = ")" if high[0] == "<" else "]"
        return f" in {left}{low[1]:g}, {high[1]:g}{right}"
    if low or high:
        op, bound = low or high
        return f" {op} {bound:g}"
    return ""


def _toml_kind(value) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"


def _show(value) -> str:
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, float) and len(repr(value)) > 12:
        text = f"{value:.6g}"
    else:
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
