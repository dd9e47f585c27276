"""PUMAS physics tables for backtrace's materials, created once and cached.

PUMAS tabulates energy losses and cross sections for every material of the
MDF; this takes tens of seconds, so the result is dumped in binary form
(``pumas_physics_dump``) into the user cache directory
(``platformdirs.user_cache_dir("backtrace")``, or ``BACKTRACE_CACHE``) and
loaded from there afterwards (~ms). The cache key is the SHA-256 of the MDF,
the PUMAS version, the physics settings and the cache format. Each cache file
starts with a line ``BTPHYS<format> <sha256 of the payload>``: a truncated or
corrupt file fails that check (or PUMAS's own load) and is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import platformdirs

from backtrace.pumas._errors import PumasError
from backtrace.pumas._lib import check, load, pumas_version

__all__ = ["Physics", "PhysicsSettings", "cache_dir", "CacheWarning"]

ENV_CACHE = "BACKTRACE_CACHE"
CACHE_FORMAT = 1
_MAGIC = b"BTPHYS"

# enum pumas_mode values (PUMAS 1.2.3 include/pumas.h)
MODES = {"disabled": -1, "csda": 0, "mixed": 1, "hybrid": 1, "straggled": 2}


class CacheWarning(UserWarning):
    """Emitted when a physics cache file is unusable and gets rebuilt."""


@dataclass(frozen=True)
class PhysicsSettings:
    """PUMAS physics options (None: PUMAS defaults).

    cutoff: relative split between soft and hard energy losses (default 5 %).
    elastic_ratio: hard elastic path over transport path (default 5 %).
    bremsstrahlung / pair_production / photonuclear: DCS model names
    (PUMAS defaults SSR / SSR / DRSS).
    """

    cutoff: float | None = None
    elastic_ratio: float | None = None
    bremsstrahlung: str | None = None
    pair_production: str | None = None
    photonuclear: str | None = None

    def is_default(self) -> bool:
        return all(v is None for v in asdict(self).values())


def cache_dir() -> Path:
    """Where physics dumps are cached."""
    path = os.environ.get(ENV_CACHE) or platformdirs.user_cache_dir("backtrace")
    return Path(path).expanduser()


def _cache_key(mdf: Path, settings: PhysicsSettings) -> str:
    h = hashlib.sha256()
    h.update(hashlib.sha256(Path(mdf).read_bytes()).hexdigest().encode())
    h.update(".".join(map(str, pumas_version())).encode())
    h.update(json.dumps(asdict(settings), sort_keys=True).encode())
    h.update(str(CACHE_FORMAT).encode())
    return h.hexdigest()[:32]


class Physics:
    """PUMAS muon physics for the materials of an MDF.

    ``mdf``: path of the Material Description File (the binding knows no
    default: :func:`backtrace.beamline.materials.load_physics` resolves it).

    >>> physics = Physics("materials/backtrace.xml")  # doctest: +SKIP
    >>> physics.material_index("iron")                # doctest: +SKIP
    """

    def __init__(self, mdf, settings: PhysicsSettings | None = None,
                 cache: bool = True):
        self.ffi, self.lib = load()
        self.mdf = Path(mdf).expanduser().resolve()
        if not self.mdf.is_file():
            raise FileNotFoundError(f"material file {self.mdf}: no such file")
        self.settings = settings or PhysicsSettings()
        self.cache_path = (cache_dir() / "physics" /
                           f"{_cache_key(self.mdf, self.settings)}.pumas")
        self._ptr = self.ffi.new("struct pumas_physics **")
        self.loaded_from_cache = False
        if cache and self._load_cache():
            self.loaded_from_cache = True
        else:
            self._create()
            if cache:
                self._dump_cache()
        self._materials = self._read_material_names()

    # -- creation and cache -------------------------------------------------
    def _create(self) -> None:
        ffi, lib = self.ffi, self.lib
        settings = ffi.NULL
        keep = []
        if not self.settings.is_default():
            settings = ffi.new("struct pumas_physics_settings *")
            s = self.settings
            settings.cutoff = s.cutoff or 0.0
            settings.elastic_ratio = s.elastic_ratio or 0.0
            for field in ("bremsstrahlung", "pair_production", "photonuclear"):
                value = getattr(s, field)
                if value is not None:
                    buf = ffi.new("char[]", value.encode())
                    keep.append(buf)
                    setattr(settings, field, buf)
        with tempfile.TemporaryDirectory(prefix="backtrace-dedx-") as tmp:
            # PUMAS 1.2.3 writes its dE/dx text tables into dedx_path and
            # reads them back: use a scratch directory.
            rc = lib.bt_pumas.pumas_physics_create(
                self._ptr, 0, str(self.mdf).encode(), tmp.encode(), settings)
            check(rc)

    def _load_cache(self) -> bool:
        path = self.cache_path
        if not path.exists():
            return False
        try:
            with open(path, "rb") as f:
                header = f.readline()
                payload = f.read()
            ok = (header.startswith(_MAGIC + str(CACHE_FORMAT).encode() + b" ")
                  and header.split()[1].decode() ==
                  hashlib.sha256(payload).hexdigest())
            if ok:
                check(self.lib.bt_physics_load(
                    self._ptr, str(path).encode(), len(header)))
                return True
            reason = "checksum mismatch"
        except (OSError, UnicodeDecodeError, IndexError, PumasError) as err:
            reason = str(err)
        warnings.warn(f"physics cache {path} unusable ({reason}); rebuilding",
                      CacheWarning, stacklevel=3)
        self._ptr[0] = self.ffi.NULL
        return False

    def _dump_cache(self) -> None:
        path = self.cache_path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, raw = tempfile.mkstemp(dir=path.parent, suffix=".raw")
            os.close(fd)
            check(self.lib.bt_physics_dump(self._ptr[0], raw.encode()))
            payload = Path(raw).read_bytes()
            header = (_MAGIC + str(CACHE_FORMAT).encode() + b" " +
                      hashlib.sha256(payload).hexdigest().encode() + b"\n")
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(header + payload)
            os.replace(tmp, path)
            os.unlink(raw)
        except (OSError, PumasError) as err:
            warnings.warn(f"could not write physics cache {path}: {err}",
                          CacheWarning, stacklevel=3)

    @staticmethod
    def clear_cache() -> None:
        """Remove every cached physics dump."""
        shutil.rmtree(cache_dir() / "physics", ignore_errors=True)

    # -- queries ------------------------------------------------------------
    @property
    def ptr(self):
        """The ``struct pumas_physics *`` (for backtrace.pumas internals)."""
        return self._ptr[0]

    def _read_material_names(self) -> dict[str, int]:
        ffi, lib = self.ffi, self.lib
        n = lib.bt_pumas.pumas_physics_material_length(self.ptr)
        names = {}
        name = ffi.new("char **")
        for i in range(n):
            check(lib.bt_pumas.pumas_physics_material_name(self.ptr, i, name))
            names[ffi.string(name[0]).decode()] = i
        return names

    @property
    def materials(self) -> dict[str, int]:
        """Material name -> PUMAS index."""
        return dict(self._materials)

    def material_index(self, name: str) -> int:
        try:
            return self._materials[name]
        except KeyError:
            known = ", ".join(sorted(self._materials))
            raise KeyError(
                f"unknown material {name!r} (known: {known})") from None

    def material_density(self, name: str) -> float:
        """Default density of a material, kg/m^3."""
        ffi = self.ffi
        length = ffi.new("int *")
        density = ffi.new("double *")
        i_mean = ffi.new("double *")
        check(self.lib.bt_pumas.pumas_physics_material_properties(
            self.ptr, self.material_index(name), length, density, i_mean,
            ffi.NULL, ffi.NULL))
        return density[0]

    def particle(self) -> tuple[float, float]:
        """(mass [GeV/c^2], c tau [m]) of the transported particle."""
        ffi = self.ffi
        p = ffi.new("enum pumas_particle *")
        tau = ffi.new("double *")
        mass = ffi.new("double *")
        check(self.lib.bt_pumas.pumas_physics_particle(self.ptr, p, tau, mass))
        return mass[0], tau[0]

    def _property(self, func, material: str, energy, *, mode: str | None):
        ffi = self.ffi
        index = self.material_index(material)
        out = ffi.new("double *")
        values = []
        for e in _iterable(energy):
            args = (self.ptr, MODES[mode], index, float(e), out) \
                if mode is not None else (self.ptr, index, float(e), out)
            check(func(*args))
            values.append(out[0])
        return _like(energy, values)

    def range(self, material: str, kinetic_energy, mode: str = "csda"):
        """Grammage range [kg/m^2] at kinetic energy [GeV]."""
        return self._property(self.lib.bt_pumas.pumas_physics_property_range,
                              material, kinetic_energy, mode=mode)

    def stopping_power(self, material: str, kinetic_energy, mode="csda"):
        """Mean stopping power [GeV/(kg/m^2)]; mode 'csda' = total, 'mixed' =
        restricted to soft losses."""
        return self._property(
            self.lib.bt_pumas.pumas_physics_property_stopping_power,
            material, kinetic_energy, mode=mode)

    def kinetic_energy(self, material: str, grammage, mode: str = "csda"):
        """Kinetic energy [GeV] whose range is ``grammage`` [kg/m^2]."""
        return self._property(
            self.lib.bt_pumas.pumas_physics_property_kinetic_energy,
            material, grammage, mode=mode)

    def cross_section(self, material: str, kinetic_energy):
        """Restricted (hard) inelastic cross section [m^2/kg]."""
        return self._property(
            self.lib.bt_pumas.pumas_physics_property_cross_section,
            material, kinetic_energy, mode=None)

    def __del__(self):
        ptr = getattr(self, "_ptr", None)
        lib = getattr(self, "lib", None)
        if ptr is not None and lib is not None and ptr[0] != self.ffi.NULL:
            lib.bt_pumas.pumas_physics_destroy(ptr)


def _iterable(x):
    try:
        return [float(v) for v in x]
    except TypeError:
        return [float(x)]


def _like(x, values):
    import numpy as np

    if np.ndim(x) == 0:
        return values[0]
    return np.asarray(values)
