"""stations: create, list, update, delete; clean not-found and validation errors."""

from __future__ import annotations

from ebike.tests.conftest import Ebike


async def test_create_list_delete(ebike: Ebike) -> None:
    created = await ebike.call("stations", "PUT", "/stations", {"name": "Central", "positionX": 1.5, "positionY": 2.5})
    assert created["name"] == "Central" and created["positionX"] == 1.5
    await ebike.settle()
    listed = await ebike.call("stations", "GET", "/stations")
    assert [s["id"] for s in listed] == [created["id"]]
    deleted = await ebike.call("stations", "DELETE", f"/stations/{created['id']}")
    assert deleted["id"] == created["id"]
    await ebike.settle()
    assert await ebike.call("stations", "GET", "/stations") == []
    again = await ebike.call("stations", "DELETE", f"/stations/{created['id']}", expect=404)
    assert again == {"error": "station not found"}


async def test_position_zero_is_valid_and_blank_name_is_not(ebike: Ebike) -> None:
    await ebike.call("stations", "PUT", "/stations", {"name": "Origin", "positionX": 0, "positionY": 0})
    bad = await ebike.call("stations", "PUT", "/stations", {"name": " ", "positionX": 1, "positionY": 1}, expect=422)
    assert bad["error"] == "validation failed"
    broken = await ebike.runtime.client("stations").put("/stations", content=b"{nope")
    assert broken.status_code == 400 and broken.json() == {"error": "invalid request body"}
