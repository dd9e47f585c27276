"""Geometry files: validation, overrides, compilation, navigation, fields."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from backtrace.beamline.compile import compile_geometry, locate_reference
from backtrace.beamline.fields import deflection_angle_rad
from backtrace.beamline.geometry import (
    GeometryError,
    default_geometry_path,
    load_geometry,
    parse_override,
)
from backtrace.cli import main
from backtrace.pumas import Context, TransportOptions

try:
    import tomllib
except ImportError:  # pragma: no cover
    import tomli as tomllib


@pytest.fixture(scope="module")
def geometry():
    return load_geometry()


@pytest.fixture(scope="module")
def compiled(geometry, physics):
    return compile_geometry(geometry, physics)


def _broken(tmp_path, edit):
    """Write a copy of the shipped file after ``edit(raw_dict)``."""
    import tomli_w

    raw = tomllib.loads(default_geometry_path().read_text())
    edit(raw)
    path = tmp_path / "broken.toml"
    path.write_text(tomli_w.dumps(raw))
    return path


def _element(raw, name):
    return next(e for e in raw["element"] if e["name"] == name)


def test_shipped_file_is_valid(geometry):
    assert geometry.name.startswith("NA62 K12")
    assert len(geometry.elements) > 30
    assert geometry.target_z_m == pytest.approx(23.07)


def test_check_command_passes():
    result = CliRunner().invoke(main, ["geometry", "check"])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


BROKEN = {
    "overlap": (lambda raw: _element(raw, "COLL2").update(z_min_m=39.0),
                "overlapping volumes: element 'COLL1'"),
    "unknown material": (lambda raw: _element(raw, "COLL2").update(material="Steell"),
                         "element 'COLL2': material 'Steell' unknown (known: air"),
    "negative length": (lambda raw: _element(raw, "COLL2").update(z_max_m=42.18),
                        "element 'COLL2': negative or zero length"),
    "missing key": (lambda raw: _element(raw, "COLL2").pop("z_min_m"),
                    "element 'COLL2': 'z_min_m' is a required property"),
    "unknown key": (lambda raw: _element(raw, "COLL2").update(half_z_m=1.0),
                    "element 'COLL2': Additional properties are not allowed ('half_z_m'"),
    "unknown role": (lambda raw: _element(raw, "sweeper").update(role="sweepr"),
                     "element 'sweeper': role 'sweepr' unknown"),
    "bad version": (lambda raw: raw.update(version=7), "version 7 unsupported"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_copies_fail_naming_the_element(tmp_path, case):
    edit, message = BROKEN[case]
    path = _broken(tmp_path, edit)
    with pytest.raises(GeometryError) as info:
        load_geometry(path)
    assert message in str(info.value)
    result = CliRunner().invoke(main, ["geometry", "check", str(path)])
    assert result.exit_code == 1
    assert message in result.output


def test_not_toml(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("version = [1\n")
    with pytest.raises(GeometryError, match="not valid TOML"):
        load_geometry(path)


def test_describe_json_reference_content():
    result = CliRunner().invoke(main, ["geometry", "describe", "--json"])
    assert result.exit_code == 0
    rows = {r["name"]: r for r in json.loads(result.output)}
    tax1 = rows["TAX1"]
    assert tax1["z_min_m"] == pytest.approx(23.07)
    assert tax1["role"] == "dump"
    assert [p["material"] for p in tax1["parts"]][:2] == ["copper", "copper"]
    assert {p["material"] for p in tax1["parts"]} == {"copper", "iron"}
    assert tax1["parts"][0]["z_min_m"] == pytest.approx(23.07)
    assert rows["TAX2"]["material"] == "iron"
    for name, b in [("B1A", 1.82), ("B2", 1.82), ("BEND-1B", 1.82),
                    ("BEND-1C", 1.82), ("B4A", 1.6678), ("B6", 1.6678),
                    ("MNP33", 0.6928)]:
        assert np.linalg.norm(rows[name]["field_tesla"]) == pytest.approx(b)
    assert any(r["role"] == "sweeper" for r in rows.values())
    for name, z in [("STRAW1", 183.508), ("STRAW2", 194.066),
                    ("STRAW3", 204.459), ("STRAW4", 218.885),
                    ("MUV3", 246.800)]:
        assert rows[name]["z_min_m"] == pytest.approx(z)
    assert rows["sweeper"]["estimated"] is True
    for r in rows.values():
        assert {"name", "z_min_m", "z_max_m", "material", "field_tesla",
                "role", "estimated"} <= set(r)


def test_overrides():
    g = load_geometry(overrides=["sweeper.scale=0", "TAX1.material=iron",
                                 "world.half_x_m=2.5"])
    assert g.element("sweeper").describe()["field_tesla"] == [0.0, 0.0, 0.0]
    assert {p.material for p in g.element("TAX1").parts} == {"iron"}
    assert g.world["half_x_m"] == 2.5
    assert g.overrides == ["sweeper.scale=0", "TAX1.material=iron",
                           "world.half_x_m=2.5"]
    scaled = load_geometry(overrides=["B1A.scale=1.5"])
    assert scaled.element("B1A").describe()["field_tesla"][0] == \
        pytest.approx(-1.82 * 1.5)


def test_overrides_of_dotted_element_names_and_part_densities():
    g = load_geometry(overrides=["SCR.1.scale=0.5", "TAX1.part.2.density_scale=1.1"])
    nominal = load_geometry()
    assert g.element("SCR.1").scale == 0.5 and nominal.element("SCR.1").scale == 1.0
    assert [p.density_scale for p in g.element("TAX1").parts] == \
        [1.0, 1.0, 1.1, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("text,message", [
    ("nosuch.scale=1", "no element 'nosuch'"),
    ("sweeper", "expected ELEMENT.KEY=VALUE"),
    ("sweeper.scale=-1", "scale must be >= 0"),
    ("TAX1.material=unobtainium", "material 'unobtainium' unknown"),
])
def test_bad_overrides(text, message):
    with pytest.raises(GeometryError, match=message):
        load_geometry(overrides=[text])


def test_parse_override_values():
    assert parse_override("a.b=1.5") == ("a", ["b"], 1.5)
    assert parse_override("a.b.c=[1, 2, 3]") == ("a", ["b", "c"], [1, 2, 3])
    assert parse_override("TAX1.material=iron") == ("TAX1", ["material"], "iron")


def test_c_and_python_locators_agree(compiled):
    rng = np.random.default_rng(2)
    n = 100_000
    wide = np.column_stack([rng.uniform(-3.1, 3.1, n // 2),
                            rng.uniform(-3.1, 3.1, n // 2),
                            rng.uniform(13.5, 247.5, n // 2)])
    near = np.column_stack([rng.normal(0, 0.1, n // 2),
                            rng.normal(-0.05, 0.1, n // 2),
                            rng.uniform(14.0, 106.0, n // 2)])
    points = np.vstack([wide, near])
    c = compiled.navigator.locate(points)
    py = locate_reference(compiled, points)
    assert np.array_equal(c, py)
    assert (c >= 0).mean() > 0.9  # most points are inside the world


def test_locate_known_points(compiled, physics):
    names = compiled.material_names
    vol = compiled.volumes

    def where(x, y, z):
        r = compiled.navigator.locate([[x, y, z]])[0]
        return vol[compiled.region_volume[r]].name, names[
            compiled.navigator.region_info[r][1].material]

    assert where(0.0, 0.3, 23.5) == ("TAX1/copper", "copper")
    assert where(0.0, 0.3, 24.3) == ("TAX1/iron", "iron")
    assert where(0.0, -0.1077, 23.5)[1] == "vacuum"  # TAX1 beam hole
    assert where(0.0, 0.0, 150.0) == ("fill:vacuum tank O=1920/tank", "vacuum")
    assert where(0.97, 0.0, 150.0) == ("fill:vacuum tank O=1920/tank_wall", "iron")
    assert where(0.0, 0.0, 60.0) == ("fill:air", "air")
    assert where(0.2, 0.0, 36.0) == ("sweeper", "iron")
    assert compiled.navigator.locate([[0.0, 0.0, 300.0]])[0] == -1
    assert compiled.navigator.locate([[3.5, 0.0, 50.0]])[0] == -1


DIPOLES = ["B1A", "B2", "BEND-1B", "BEND-1C", "B4A", "B4B", "B5", "B6",
           "TRIM5", "MNP33"]


@pytest.mark.parametrize("name", DIPOLES)
def test_dipole_deflection(geometry, physics, name):
    """100 GeV muon through each dipole gap (vacuum, no scattering):
    deflection 0.2998 B L / p within 0.5 %, sign from F = q v x B."""
    e = geometry.element(name)
    ap = e.parts[0].apertures[0]
    compiled = compile_geometry(geometry, physics, z_range=(e.z_min_m, e.z_max_m))
    ctx = Context(physics, compiled.navigator)
    states = {"charge": [1.0, -1.0], "energy": [100.0, 100.0],
              "weight": [1.0, 1.0],
              "position": [[ap.center_m[0], ap.center_m[1], e.z_min_m]] * 2,
              "direction": [[0.0, 0.0, 1.0]] * 2}
    opts = TransportOptions(energy_loss="csda", scattering=False, decay=False,
                            direction="forward")
    final, status, _ = ctx.transport(states, opts, seed=1)
    assert list(status) == [1, 1]  # both reached the exit plane
    b = np.array(ap.field_tesla) * e.scale
    p = np.sqrt((100.0 + 0.1056583755) ** 2 - 0.1056583755 ** 2)
    expected = deflection_angle_rad(np.linalg.norm(b), e.z_max_m - e.z_min_m, p)
    for q, u in zip((1.0, -1.0), final["direction"]):
        kick = np.cross([0.0, 0.0, 1.0], b) * q  # direction of v x B
        kick /= np.linalg.norm(kick)
        angle = np.arcsin(np.dot(u, kick))
        assert angle == pytest.approx(expected, rel=0.005)


def test_field_map_trilinear_agrees(tmp_path, physics):
    from backtrace.beamline.fields import load_field_map, trilinear

    x = np.linspace(-0.1, 0.1, 5)
    y = np.linspace(-0.1, 0.1, 4)
    z = np.linspace(35.0, 37.5, 6)
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    b = np.stack([0.3 + xx * 2, yy * 5 - zz * 0.01, 0.1 * zz], axis=-1)
    path = tmp_path / "map.npz"
    np.savez(path, x_m=x, y_m=y, z_m=z, b_tesla=b)
    fmap = load_field_map(path)
    text = default_geometry_path().read_text()
    text = text.replace('field_tesla = [0.0, 1.8, 0.0]\nscale = 1.0',
                        f'scale = 1.0\nfield_map = {{ file = "{path}", '
                        'region = "aperture" }', 1)
    gpath = tmp_path / "g.toml"
    gpath.write_text(text)
    g = load_geometry(gpath)
    nav = compile_geometry(g, physics).navigator
    rng = np.random.default_rng(3)
    pts = np.column_stack([rng.uniform(-0.035, 0.035, 2000),
                           rng.uniform(-0.045, 0.005, 2000),
                           rng.uniform(35.0, 37.5, 2000)])
    assert np.allclose(nav.field(pts), trilinear(fmap, pts), atol=1e-12)
    # linear field: trilinear interpolation is exact
    exact = np.stack([0.3 + pts[:, 0] * 2, pts[:, 1] * 5 - pts[:, 2] * 0.01,
                      0.1 * pts[:, 2]], axis=-1)
    assert np.allclose(nav.field(pts), exact, atol=1e-12)


def test_csv_field_map_matches_npz(tmp_path):
    from backtrace.beamline.fields import load_field_map

    rows = ["x_m,y_m,z_m,bx_t,by_t,bz_t"]
    for z in (0.0, 1.0):
        for y in (0.0, 0.5):
            for x in (0.0, 0.5, 1.0):
                rows.append(f"{x},{y},{z},{x + y},{z},0")
    path = tmp_path / "m.csv"
    path.write_text("\n".join(rows[::-1][:-1][::-1] if False else rows) + "\n")
    m = load_field_map(path)
    assert m.values.shape == (2, 2, 3, 3)
    assert m.values[1, 1, 2].tolist() == [1.5, 1.0, 0.0]


def test_show_writes_png(tmp_path):
    out = tmp_path / "geometry.png"
    result = CliRunner().invoke(main, ["geometry", "show", "--out", str(out),
                                       "--set", "sweeper.scale=0"])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 20_000
    import matplotlib.image as mpimg

    image = mpimg.imread(out)
    assert image.shape[0] > 500 and image.shape[1] > 1000
    assert image[..., :3].std() > 0.05  # not blank


def test_show_unwritable_output(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(main, ["geometry", "show", "--out",
                                       str(blocker / "sub" / "g.png")])
    assert result.exit_code == 1
    assert "cannot write" in result.output


def test_show_with_traced_tracks(tmp_path, sample_file):
    traced = tmp_path / "traced.parquet"
    r = CliRunner().invoke(main, ["trace", "--tracks", str(sample_file), "-q",
                                  "--out", str(traced)])
    assert r.exit_code == 0, r.output
    out = tmp_path / "g.png"
    r = CliRunner().invoke(main, ["geometry", "show", "--tracks", str(traced),
                                  "--max-tracks", "20", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert out.stat().st_size > 20_000


#: Detector positions from NA62's public geometry (NA62MC geometry-parameter
#: classes, the NA62 detector paper JINST 12 (2017) P05025 and the e+e−
#: analysis' fiducial cones, arXiv:2312.12055): (element, z front [m],
#: z back [m] or None). A misplaced element fails here.
DETECTOR_Z = [("STRAW1", 183.508, None), ("STRAW2", 194.066, None),
              ("STRAW3", 204.459, None), ("STRAW4", 218.885, None),
              ("LAV5", None, 152.393), ("LAV8", None, 180.923),
              ("CHOD-V", 239.009, None), ("CHOD-H", 239.389, None),
              ("LKr", 241.093, None), ("MUV1", 243.418, None),
              ("MUV2", 244.435, None), ("MUV3", 246.800, None)]


@pytest.mark.parametrize("name, front, back", DETECTOR_Z)
def test_detector_elements_are_where_na62_puts_them(geometry, name, front, back):
    e = geometry.element(name)
    if front is not None:
        assert e.z_min_m == pytest.approx(front, abs=1e-3)
    if back is not None:
        assert e.z_max_m == pytest.approx(back, abs=1e-3)
    assert e.detector is not None and e.detector["role"] in (
        "tracker", "veto", "calorimeter", "muon", "hodoscope")


def test_detector_roles_and_the_twelve_lavs(geometry):
    lavs = geometry.detectors("veto")
    names = [e.name for e in lavs]
    assert [f"LAV{i}" for i in range(1, 13)] == sorted(
        (n for n in names if n.startswith("LAV")), key=lambda n: int(n[3:]))
    assert "ANTI0" in names
    assert [e.name for e in geometry.detectors("tracker")] == \
        ["STRAW1", "STRAW2", "STRAW3", "STRAW4"]
    assert [e.name for e in geometry.detectors("muon")] == ["MUV3"]
    z = [geometry.element(f"LAV{i}").z_min_m for i in range(1, 13)]
    assert z == sorted(z)                                   # stations in order
    newchod = geometry.element("NewCHOD")
    assert newchod.z_min_m <= 238.131 <= newchod.z_max_m


def test_detector_active_volumes_at_known_points(compiled):
    """The lead glass of LAV5 starts at its published inner radius 536.5 mm
    (LAV8: 767.5 mm); MUV3 has its 103 mm beam hole; STRAW1 is a thin
    layer at 183.508 m; ANTI0 sits at the decay-volume entrance."""
    vol = compiled.volumes

    def where(x, y, z):
        r = compiled.navigator.locate([[x, y, z]])[0]
        return vol[compiled.region_volume[r]].name

    assert where(0.530, 0.0, 152.0) == "LAV5/inside"
    assert where(0.545, 0.0, 152.0) == "LAV5/lead_glass"
    assert where(0.760, 0.0, 180.5) == "LAV8/inside"
    assert where(0.775, 0.0, 180.5) == "LAV8/lead_glass"
    assert where(0.5, 0.5, 246.82) == "MUV3"
    assert where(0.09, 0.0, 246.82) != "MUV3" and where(0.11, 0.0, 246.82) == "MUV3"
    assert where(0.5, 0.0, 183.5085).startswith("STRAW1")
    assert where(0.5, 0.0, 183.5100).startswith("fill:")
    anti0 = compiled.geometry.element("ANTI0")
    dv_lo, _ = compiled.geometry.decay_volume_z_m
    assert anti0.z_max_m <= dv_lo and dv_lo - anti0.z_min_m < 0.1


def test_show_outlines_every_active_detector_by_role(geometry):
    """`geometry show` draws each detector's active layer with its role's
    colour: 13 vetoes (ANTI0, LAV1-12), 4 trackers, 3 calorimeters (LKr,
    MUV1, MUV2), 3 hodoscopes, 1 muon detector, in both views."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgba

    from backtrace.beamline.view import ROLE_COLOURS, _draw_view

    fig, ax = plt.subplots()
    _draw_view(ax, geometry, 1, "y [m]")
    edges = [tuple(p.get_edgecolor()) for p in ax.patches]
    plt.close(fig)
    counts = {role: edges.count(to_rgba(colour)) for role, colour in ROLE_COLOURS.items()}
    assert counts == {"veto": 13, "tracker": 4, "calorimeter": 3, "hodoscope": 3,
                      "muon": 1}
