"""The configuration of a prompt-background estimate (``backtrace run``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["RunConfig", "check_run"]


@dataclass(frozen=True)
class RunConfig:
    """What one estimate does (recorded in ``background.json`` → ``config``).

    Geometry (``geometry_file`` + ``overrides``) and selection
    (``regions_file``); ``pot_target``: POT the yields are normalised to;
    ``samples_per_track``: backward histories per track; ``seed``;
    ``energy_loss``: PUMAS mode of the backward traces; ``prior``: source
    prior of the per-track posterior ('energy', 'full', 'none');
    ``density_events``: forward source events behind the cached source
    density; ``q_min_gev``: lowest energy given to a secondary;
    ``forced_z_min_m``: upstream end of the forcing window (products from
    further upstream cannot make a vertex in the decay volume);
    ``interactions_per_history``: independent forced interactions per
    history, each weighted 1/K; ``prompt_z_min_m``: interactions downstream
    of it are 'prompt', upstream 'upstream_prompt' (None: the decay-volume
    entrance of the geometry, ``[decay_volume] z_min_m``); ``smearing``: smear the
    measured momenta; ``source_overrides``: geometry overrides of the source
    density (None: ``overrides``; systematic re-runs vary the geometry
    downstream of the TAX and keep the nominal prior); ``processes``: the
    forced processes (None: all of :data:`backtrace.interactions.PROCESSES`;
    estimates over disjoint subsets add up to the estimate over their union,
    and a rare process forced alone gets all the histories).
    """

    geometry_file: str | None = None
    overrides: tuple[str, ...] = ()
    regions_file: str | None = None
    pot_target: float = 1.4e17
    samples_per_track: int = 4
    seed: int = 1
    energy_loss: str = "straggled"
    prior: str = "energy"
    density_events: int = 30000
    q_min_gev: float = 1.0
    forced_z_min_m: float = 100.0
    interactions_per_history: int = 4
    prompt_z_min_m: float | None = None
    smearing: bool = True
    source_overrides: tuple[str, ...] | None = None
    processes: tuple[str, ...] | None = None

    def __post_init__(self):
        if self.processes is not None:
            from .interactions import PROCESSES

            unknown = [p for p in self.processes if p not in PROCESSES]
            if unknown or not self.processes:
                raise ValueError(f"processes {list(self.processes)}: expected one or more "
                                 f"of {', '.join(PROCESSES)}")

    def forced_processes(self) -> tuple[str, ...]:
        from .interactions import PROCESSES

        return tuple(PROCESSES) if self.processes is None else tuple(self.processes)

    def prompt_boundary_m(self, geometry) -> float:
        """The prompt / upstream-prompt boundary [m]: ``prompt_z_min_m``,
        else the geometry's decay-volume entrance."""
        return self.prompt_z_min_m if self.prompt_z_min_m is not None \
            else geometry.decay_volume_z_m[0]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["overrides"] = list(self.overrides)
        if self.source_overrides is not None:
            d["source_overrides"] = list(self.source_overrides)
        d["processes"] = list(self.forced_processes())
        return d


def check_run(tracks, config: RunConfig, systematics: str, target_rel_unc,
              max_samples_per_track: int) -> None:
    """ValueError before any work when a run cannot give a result."""
    from .rng import check_budget
    from .systematics import LEVELS

    if tracks.pot is None:
        raise ValueError(f"{tracks.path}: the POT the sample represents is unknown: "
                         "give --pot")
    if systematics not in LEVELS:
        raise ValueError(f"systematics={systematics!r} (expected one of {LEVELS})")
    if target_rel_unc is not None and not target_rel_unc > 0:
        raise ValueError(f"target relative uncertainty must be > 0 (got {target_rel_unc})")
    if not 1 <= config.samples_per_track <= max_samples_per_track:
        raise ValueError(f"need 1 <= samples per track ({config.samples_per_track}) <= "
                         f"max samples per track ({max_samples_per_track})")
    check_budget(max_samples_per_track, config.interactions_per_history, tracks.n_rows)
