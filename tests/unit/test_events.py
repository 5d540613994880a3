"""Typed events: registration by name, camelCase payloads, upcasting old payloads, envelopes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from junction.events import Envelope, Event, EventRegistry, UnknownEventError, dumps, registry

# Names are prefixed so they cannot clash with events other test modules register.


class VehicleParked(Event):
    event_name = "tests.events.VehicleParked"
    schema_version = 2
    vehicle_id: str
    station_code: str
    battery_level: int = 100


class Unnamed(Event):
    some_value: int


class PriceSet(Event):
    """v1: {"price": "12.50"}; v2: {"priceCents": 1250}; v3: {"priceCents": 1250, "currency": "EUR"}."""

    event_name = "tests.events.PriceSet"
    schema_version = 3

    price_cents: int
    currency: str


UPCAST_CALLS: list[str] = []


@registry.upcaster("tests.events.PriceSet", 1)
def _price_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    UPCAST_CALLS.append("1->2")
    return {"priceCents": round(float(data["price"]) * 100)}


@registry.upcaster("tests.events.PriceSet", 2)
def _price_v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    UPCAST_CALLS.append("2->3")
    return {**data, "currency": "EUR"}


class Gapped(Event):
    """Has an upcaster from v2 only: v1 payloads cannot be loaded."""

    event_name = "tests.events.Gapped"
    schema_version = 3

    value: int


@registry.upcaster("tests.events.Gapped", 2)
def _gapped_v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    return {"value": data["old"]}


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    UPCAST_CALLS.clear()


# -- registration -----------------------------------------------------------------------------
def test_registration_by_name_and_version() -> None:
    assert VehicleParked.event_name == "tests.events.VehicleParked"
    assert VehicleParked.schema_version == 2
    assert registry.get("tests.events.VehicleParked") is VehicleParked
    assert registry.known("tests.events.VehicleParked")
    assert not registry.known("VehicleParked")  # the name given, not the class name


def test_default_name_is_the_class_name_and_version_one() -> None:
    assert Unnamed.event_name == "Unnamed"
    assert Unnamed.schema_version == 1
    assert registry.get("Unnamed") is Unnamed


def test_the_same_class_defined_again_replaces_the_earlier_one() -> None:
    def define() -> type[Event]:
        class Reloaded(Event):
            event_name = "tests.events.Reloaded"
            a: int

        return Reloaded

    first, second = define(), define()  # as when a module is imported again
    assert registry.get("tests.events.Reloaded") is second is not first


def test_another_class_under_a_taken_name_is_refused() -> None:
    class First(Event):
        event_name = "tests.events.Taken"
        a: int

    with pytest.raises(ValueError, match=r"event name 'tests.events.Taken' is taken by .*First"):
        class Second(Event):
            event_name = "tests.events.Taken"
            b: int

    assert registry.get("tests.events.Taken") is First


def test_separate_registry_only_knows_what_it_registered() -> None:
    own = EventRegistry()
    assert not own.known("tests.events.VehicleParked")
    own.register(VehicleParked)
    assert own.get("tests.events.VehicleParked") is VehicleParked


# -- payloads ---------------------------------------------------------------------------------
def test_payload_is_camel_case() -> None:
    event = VehicleParked(vehicle_id="v-1", station_code="S7", battery_level=40)
    assert event.payload() == {"vehicleId": "v-1", "stationCode": "S7", "batteryLevel": 40}
    assert json.loads(event.payload_json()) == {"vehicleId": "v-1", "stationCode": "S7", "batteryLevel": 40}


def test_payload_validates_from_camel_case_and_by_name() -> None:
    from_camel = VehicleParked.model_validate({"vehicleId": "v-1", "stationCode": "S7"})
    from_snake = VehicleParked(vehicle_id="v-1", station_code="S7")
    assert from_camel == from_snake
    assert from_camel.battery_level == 100
    assert VehicleParked.model_validate(from_snake.payload()) == from_snake


def test_payload_validation_errors() -> None:
    with pytest.raises(ValidationError):
        VehicleParked.model_validate({"vehicleId": "v-1"})  # stationCode missing
    with pytest.raises(ValidationError):
        VehicleParked.model_validate({"vehicleId": "v-1", "stationCode": "S", "batteryLevel": "lots"})


def test_events_are_immutable() -> None:
    event = VehicleParked(vehicle_id="v-1", station_code="S7")
    with pytest.raises(ValidationError):
        event.vehicle_id = "v-2"


def test_dumps_is_compact() -> None:
    assert dumps({"a": 1, "b": [1, 2]}) == '{"a":1,"b":[1,2]}'


# -- unknown types and upcasting --------------------------------------------------------------
def test_unknown_type_errors() -> None:
    with pytest.raises(UnknownEventError, match=r"tests\.events\.Nope"):
        registry.get("tests.events.Nope")
    with pytest.raises(UnknownEventError):
        registry.load("tests.events.Nope", 1, {})
    assert issubclass(UnknownEventError, LookupError)


def test_current_version_payload_loads_without_upcasting() -> None:
    event = registry.load("tests.events.PriceSet", 3, {"priceCents": 999, "currency": "SEK"})
    assert event == PriceSet(price_cents=999, currency="SEK")
    assert UPCAST_CALLS == []


def test_upcasters_chain_v1_to_v2_to_v3() -> None:
    event = registry.load("tests.events.PriceSet", 1, {"price": "12.50"})
    assert isinstance(event, PriceSet)
    assert event == PriceSet(price_cents=1250, currency="EUR")
    assert UPCAST_CALLS == ["1->2", "2->3"]


def test_upcasting_starts_at_the_stored_version() -> None:
    event = registry.load("tests.events.PriceSet", 2, {"priceCents": 300})
    assert event == PriceSet(price_cents=300, currency="EUR")
    assert UPCAST_CALLS == ["2->3"]


def test_missing_upcaster_is_an_error() -> None:
    assert registry.load("tests.events.Gapped", 2, {"old": 5}) == Gapped(value=5)
    with pytest.raises(UnknownEventError, match="no upcaster"):
        registry.load("tests.events.Gapped", 1, {"older": 5})


def test_upcaster_output_is_validated() -> None:
    with pytest.raises(ValidationError):
        registry.load("tests.events.PriceSet", 2, {"wrong": 1})


# -- envelopes --------------------------------------------------------------------------------
def _envelope(type_: str, schema_version: int, data: dict[str, Any]) -> Envelope:
    return Envelope(
        id="3fQ1", type=type_, stream="price-1", version=4, key="1",
        occurred_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), schema_version=schema_version, data=data,
        source="pricing", position=17, causation_id="c1", correlation_id="r1",
    )


def test_envelope_event_decodes_and_upcasts() -> None:
    old = _envelope("tests.events.PriceSet", 1, {"price": "0.99"})
    assert old.event == PriceSet(price_cents=99, currency="EUR")
    current = _envelope("tests.events.VehicleParked", 2, {"vehicleId": "v-9", "stationCode": "S1"})
    assert current.event == VehicleParked(vehicle_id="v-9", station_code="S1")


def test_envelope_event_of_unknown_type_raises() -> None:
    with pytest.raises(UnknownEventError):
        _ = _envelope("tests.events.Nope", 1, {}).event


def test_envelope_to_json() -> None:
    envelope = _envelope("tests.events.PriceSet", 1, {"price": "0.99"})
    assert envelope.to_json() == {
        "id": "3fQ1", "type": "tests.events.PriceSet", "stream": "price-1", "version": 4, "key": "1",
        "occurredAt": "2026-01-02T03:04:05+00:00", "schemaVersion": 1, "source": "pricing", "position": 17,
        "causationId": "c1", "correlationId": "r1", "data": {"price": "0.99"},
    }
    json.dumps(envelope.to_json())  # JSON-ready
