"""The configuration of a prompt-background estimate (``backtrace run``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from backtrace.interactions import PHYSICS, PROCESSES
from backtrace.interactions.forced import VETO_FLOOR, DrawPlan
from backtrace.prompt.allocation import ALLOCATION_MODES, NATURAL_DEFENSIVE
from backtrace.prompt.systematics import LEVELS
from backtrace.regions import CHANNELS
from backtrace.rng import check_budget

__all__ = ["RunConfig", "check_run", "TRANSFER_BIAS_MARGIN", "TRANSFER_BIAS_DEFENSIVE"]

#: The transfer bias aims at q ≥ this × the selection's smallest track
#: momentum [est: 0.9, range 0.8–1.0]: a selected pair holds a product of at
#: least that momentum, whose energy the transfer bounds; the margin covers
#: the momentum smearing (< 1 % at 10 GeV/c).
TRANSFER_BIAS_MARGIN = 0.9
#: Share of the draws whose transfer follows its natural spectrum under the
#: bias [est: 0.1, range 0.05–0.3]: soft transfers stay sampled (vetoes,
#: pre-selection pairs) and no draw weighs more than 10× its natural weight.
TRANSFER_BIAS_DEFENSIVE = 0.1


@dataclass(frozen=True)
class RunConfig:
    """What one estimate does (recorded in ``background.json`` → ``config``).

    Geometry (``geometry_file`` + ``overrides``) and selection
    (``regions_file``, else the packaged NA62 file of ``channel``: 'mumu'
    or 'ee', :data:`backtrace.regions.CHANNELS`; None: the file's channel,
    μ+μ− without a file); ``pot_target``: POT the yields are normalised to;
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
    forced processes (None: the channel's,
    :data:`backtrace.interactions.CHANNEL_PROCESSES`;
    estimates over disjoint subsets add up to the estimate over their union,
    and a rare process forced alone gets all the histories); ``allocation``:
    how the forced interactions are shared among the processes
    (:mod:`backtrace.prompt.allocation`: 'auto', 'uniform', 'natural' or
    ((stratum, share), ...), a stratum being a process or
    a stratum label 'process@volume@band'); ``forcing_defensive``: share of
    the draws that follow the natural proportions in the 'uniform' and
    explicit allocations (bounds every forcing weight by P /
    forcing_defensive; :data:`backtrace.prompt.allocation.NATURAL_DEFENSIVE`);
    ``transfer_bias``: importance sampling of the energy transfer towards
    transfers that can give a selected track (q ≥ ``TRANSFER_BIAS_MARGIN`` ×
    the selection's track momentum minimum, :data:`TRANSFER_BIAS_DEFENSIVE`
    of the draws natural); ``veto_floor``: the floor δ of the veto-aware
    importance (:data:`backtrace.interactions.forced.VETO_FLOOR`);
    ``final_states_per_point``: final states per drawn point (splitting at
    the interaction point, each weighted as a draw);
    ``track_allocation``: how rounds after the first share their histories
    among the tracks, 'weight' (the tracks furthest below their share of the
    input weight double theirs, :func:`backtrace.prompt.allocation.track_passes`)
    or 'uniform' (every track the same number); ``physics``: the named set
    of processes forced when ``processes`` is not given
    (:data:`backtrace.interactions.PHYSICS`: 'full' or 'geant4-default';
    ``processes`` must then be within it); ``resolution_scale``: every
    tracker resolution term (:class:`backtrace.detector.reconstruction.Smearing`)
    × this, for sensitivity studies of the vertex resolution.
    """

    geometry_file: str | None = None
    overrides: tuple[str, ...] = ()
    regions_file: str | None = None
    channel: str | None = None
    pot_target: float = 1.4e17
    samples_per_track: int = 4
    seed: int = 1
    energy_loss: str = "straggled"
    prior: str = "energy"
    density_events: int = 30000
    q_min_gev: float = 1.0
    forced_z_min_m: float = 100.0
    interactions_per_history: int = 8
    prompt_z_min_m: float | None = None
    smearing: bool = True
    source_overrides: tuple[str, ...] | None = None
    processes: tuple[str, ...] | None = None
    allocation: str | tuple = "auto"
    forcing_defensive: float = NATURAL_DEFENSIVE
    track_allocation: str = "weight"
    transfer_bias: bool = True
    veto_floor: float = VETO_FLOOR
    final_states_per_point: int = 1
    physics: str = "full"
    resolution_scale: float = 1.0

    def __post_init__(self):
        if self.channel is not None and self.channel not in CHANNELS:
            raise ValueError(f"channel {self.channel!r}: expected one of "
                             f"{', '.join(CHANNELS)}")
        if self.physics not in PHYSICS:
            raise ValueError(f"physics {self.physics!r}: expected one of "
                             f"{', '.join(PHYSICS)}")
        if self.processes is not None:
            unknown = [p for p in self.processes if p not in PROCESSES]
            if unknown or not self.processes:
                raise ValueError(f"processes {list(self.processes)}: expected one or more "
                                 f"of {', '.join(PROCESSES)}")
            outside = [p for p in self.processes if p not in self.physics_processes()]
            if self.physics != "full" and outside:
                raise ValueError(f"processes {', '.join(outside)}: not in the physics set "
                                 f"{self.physics!r} ({', '.join(self.physics_processes())})")
        if int(self.final_states_per_point) < 1:
            raise ValueError("final states per point must be >= 1")
        if not 0 < self.veto_floor <= 1:
            raise ValueError(f"veto floor {self.veto_floor}: expected 0 < floor <= 1")
        if self.track_allocation not in ("weight", "uniform"):
            raise ValueError(f"track allocation {self.track_allocation!r}: expected "
                             "'weight' or 'uniform'")
        if isinstance(self.allocation, str):
            if self.allocation not in ALLOCATION_MODES:
                raise ValueError(f"allocation {self.allocation!r}: expected one of "
                                 f"{', '.join(ALLOCATION_MODES)} or process shares")
        else:
            names = [p.partition("@")[0] for p, _ in self.allocation]
            unknown = [p for p in names if p not in self.forced_processes()]
            if unknown or not sum(s for _, s in self.allocation) > 0:
                raise ValueError(f"allocation {list(self.allocation)[:4]}: shares of the "
                                 f"forced processes ({', '.join(self.forced_processes())}) with a "
                                 "positive sum")

    def forced_allocation(self) -> dict | str | None:
        """The sampler's fixed allocation: None ('natural'), 'uniform' (also
        'auto', whose rounds pass their own plans) or {stratum: share}."""
        if self.allocation == "natural":
            return None
        if self.allocation in ("auto", "uniform"):
            return "uniform"
        return dict(self.allocation)

    def first_plan(self):
        """The draw plan of the first round (:mod:`backtrace.prompt.allocation`):
        'track' (the pilot of 'auto'), 'shares' or 'natural'."""
        k = float(self.interactions_per_history)
        if self.allocation == "natural":
            return DrawPlan("natural", k)
        if self.allocation == "auto":
            return DrawPlan("track", k)
        shares = () if self.allocation == "uniform" else tuple(
            (str(n), float(v)) for n, v in self.allocation)
        return DrawPlan("shares", k, shares, float(self.forcing_defensive))

    def physics_processes(self) -> tuple[str, ...]:
        """The processes of the ``physics`` set for the channel
        (:data:`backtrace.interactions.PHYSICS`; μ+μ− when not given)."""
        return PHYSICS[self.physics][self.channel or "mumu"]

    def forced_processes(self) -> tuple[str, ...]:
        """``processes``, else the channel's default set
        (:data:`backtrace.interactions.CHANNEL_PROCESSES`; μ+μ− when the
        channel is not given)."""
        return self.physics_processes() if self.processes is None \
            else tuple(self.processes)

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
        if not isinstance(self.allocation, str):
            d["allocation"] = {p: float(v) for p, v in self.allocation}
        return d


def check_run(tracks, config: RunConfig, systematics: str, target_rel_unc,
              max_samples_per_track: int) -> None:
    """ValueError before any work when a run cannot give a result."""
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
