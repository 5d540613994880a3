"""How the web UI prints money, coordinates and the map's extent."""

from __future__ import annotations

from ebike.web.format import euros, extent, number, plain


def test_euros_from_cents() -> None:
    assert euros(0) == "0.00 €"
    assert euros(1250) == "12.50 €"
    assert euros(-5) == "-0.05 €"
    assert euros(-120) == "-1.20 €"


def test_coordinates() -> None:
    assert number(3.0) == "3"
    assert number(2.46) == "2.5"
    assert plain(20.0) == "20"
    assert plain(0.125) == "0.125"


def test_the_map_holds_the_default_city_and_everything_on_it() -> None:
    empty = extent([])
    assert empty.x < 0 and empty.y < 0 and empty.x + empty.width > 100 and empty.width == empty.height
    wide = extent([{"x": -50.0, "y": 10.0}, {"x": 250.0, "y": 3.0}, None])
    assert wide.x <= -50 and wide.x + wide.width >= 250
    assert wide.unit > empty.unit
