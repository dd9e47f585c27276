"""Physics tables are cached; corrupt or stale cache files are rebuilt."""

from __future__ import annotations

import pytest

from backtrace.pumas import CacheWarning, Physics

IRON_ONLY = """<pumas>
  <element name="Fe" Z="26" A="55.845" I="286.0" />
  <material name="iron" density="7.874"><component name="Fe" fraction="1"/>
  </material>
</pumas>
"""


@pytest.fixture
def small_mdf(tmp_path, monkeypatch):
    monkeypatch.setenv("BACKTRACE_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "iron.xml"
    path.write_text(IRON_ONLY)
    return path


def test_second_start_takes_the_cache_path(small_mdf, monkeypatch):
    """The second start loads the dump and never creates the tables (the
    expensive PUMAS call): creation is made to fail, so only the cache path
    can succeed."""
    first = Physics(mdf=small_mdf)
    assert not first.loaded_from_cache
    assert first.cache_path.exists()

    def no_creation(self):
        raise AssertionError("the physics tables were created again")

    monkeypatch.setattr(Physics, "_create", no_creation)
    second = Physics(mdf=small_mdf)
    assert second.loaded_from_cache
    assert second.cache_path == first.cache_path
    assert second.range("iron", 50.0) == pytest.approx(
        first.range("iron", 50.0), rel=1e-12)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "payload"])
def test_corrupt_cache_is_rebuilt(small_mdf, damage):
    reference = Physics(mdf=small_mdf).range("iron", 50.0)
    path = Physics(mdf=small_mdf).cache_path
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a physics dump\n" + b"\x00" * 100)
    else:  # flip bytes inside the payload, header intact
        body = bytearray(data)
        body[len(body) // 2: len(body) // 2 + 16] = b"\xff" * 16
        path.write_bytes(bytes(body))
    with pytest.warns(CacheWarning, match="rebuilding"):
        rebuilt = Physics(mdf=small_mdf)
    assert not rebuilt.loaded_from_cache
    assert rebuilt.range("iron", 50.0) == pytest.approx(reference, rel=1e-12)
    # and the cache file is healthy again
    assert Physics(mdf=small_mdf).loaded_from_cache


def test_changed_mdf_gets_new_cache(small_mdf):
    a = Physics(mdf=small_mdf)
    small_mdf.write_text(IRON_ONLY.replace('density="7.874"',
                                           'density="7.800"'))
    b = Physics(mdf=small_mdf)
    assert a.cache_path != b.cache_path
    assert not b.loaded_from_cache
    assert b.material_density("iron") == pytest.approx(7800.0)
