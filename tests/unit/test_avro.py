"""Avro export codec and schema evolution: encoding a plain reader decodes, backward-compatible changes read old
data, incompatible ones are refused with the reason; the export declaration's checks; embedded, nothing changes."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError

from junction.avro import AvroCodec, IncompatibleSchema, check_backward, compatibility_problems, load_schema
from junction.clock import VirtualClock
from junction.events import Event
from junction.kafka import KafkaConfig
from junction.kafka.exports import ExportedRecords, exported_topic, subscription_topic
from junction.runtime import Runtime
from junction.service import Service, SubscriptionSpec
from tests.unit import toy_export
from tests.unit.toy_export import SCHEMA, OrderPlaced

PAYLOAD = {"orderNumber": "7ee2b6f2", "email": "user@example.com", "firstName": "John", "lastName": "Doe",
           "skuCode": "SKU001"}


def evolved(*fields: dict[str, Any], drop: str | None = None) -> dict[str, Any]:
    """SCHEMA with ``fields`` added (or replacing those of the same name) and ``drop`` removed."""
    names = {f["name"] for f in fields}
    kept = [f for f in SCHEMA["fields"] if f["name"] not in names and f["name"] != drop]
    return {**SCHEMA, "fields": [*kept, *fields]}


def test_a_plain_fastavro_reader_decodes_what_the_codec_writes() -> None:
    data = toy_export.CODEC.encode(PAYLOAD)
    record = schemaless_reader(io.BytesIO(data), parse_schema(SCHEMA), None)
    assert record == {"orderNumber": "7ee2b6f2", "email": "user@example.com", "firstName": "John", "lastName": "Doe"}
    assert toy_export.CODEC.decode(data) == {k: v for k, v in PAYLOAD.items() if k != "skuCode"}


def test_fields_map_avro_names_to_payload_paths(tmp_path: Path) -> None:
    schema = tmp_path / "order-placed.avsc"
    schema.write_text(json.dumps(SCHEMA))
    codec = AvroCodec.from_file(schema, fields={"email": "user.email", "firstName": "user.first"})
    payload = {"orderNumber": "1", "lastName": "Doe", "user": {"email": "a@b.c", "first": "Ann"}}
    assert codec.decode(codec.encode(payload)) == payload
    with pytest.raises(ValueError, match="no field nickname"):
        AvroCodec(SCHEMA, fields={"nickname": "nick"})
    with pytest.raises(ValueError, match="Avro record"):
        AvroCodec({"type": "string"})


def test_a_compatible_new_version_reads_data_the_previous_one_wrote() -> None:
    v2 = evolved({"name": "currency", "type": "string", "default": "EUR"},
                 {"name": "quantity", "type": ["null", "long"], "default": None}, drop="lastName")
    old = AvroCodec(SCHEMA)
    new = AvroCodec(v2, previous=[SCHEMA])
    written = old.encode(PAYLOAD)
    # fastavro's own resolution: old data, read with the new schema
    resolved = schemaless_reader(io.BytesIO(written), parse_schema(SCHEMA), parse_schema(v2))
    assert resolved == {"orderNumber": "7ee2b6f2", "email": "user@example.com", "firstName": "John",
                        "currency": "EUR", "quantity": None}
    assert new.decode(written, old.schema_id)["currency"] == "EUR"  # the record names its writer's schema
    assert new.decode(new.encode({**PAYLOAD, "currency": "USD", "quantity": 2}))["quantity"] == 2
    with pytest.raises(ValueError, match="does not know"):
        old.decode(new.encode({**PAYLOAD, "currency": "USD", "quantity": 2}), new.schema_id)


@pytest.mark.parametrize("change", [
    evolved({"name": "email", "type": ["null", "string"]}),  # widened into a union
    evolved({"name": "orderNumber", "type": "bytes"}),  # string -> bytes is a promotion
    evolved({"name": "customer", "aliases": ["firstName"], "type": "string"}, drop="firstName"),  # renamed, aliased
    {**evolved(), "name": "OrderPlaced", "aliases": ["zeli8888.lab4.events.OrderPlacedEvent"]},
])
def test_backward_compatible_changes_pass_the_check(change: dict[str, Any]) -> None:
    assert compatibility_problems(parse_schema(change), parse_schema(SCHEMA)) == []
    data = io.BytesIO()
    schemaless_writer(data, parse_schema(SCHEMA), {k: PAYLOAD[k] for k in ("orderNumber", "email", "firstName",
                                                                            "lastName")})
    data.seek(0)
    schemaless_reader(data, parse_schema(SCHEMA), parse_schema(change))  # and fastavro agrees


@pytest.mark.parametrize(("change", "why"), [
    (evolved({"name": "phone", "type": "string"}), "phone: added without a default"),
    (evolved({"name": "email", "type": "int"}), "email: string cannot be read as int"),
    (evolved({"name": "email", "type": ["null", "int"]}), "email: string is in none of the union's branches"),
    ({**evolved(), "name": "Other"}, "OrderPlacedEvent is not zeli8888.lab4.events.Other"),
])
def test_an_incompatible_change_is_refused_with_the_reason(change: dict[str, Any], why: str) -> None:
    with pytest.raises(IncompatibleSchema) as refused:
        AvroCodec(change, previous=[SCHEMA])
    assert why in str(refused.value) and "cannot read data written with previous schema #1" in str(refused.value)
    data = io.BytesIO(AvroCodec(SCHEMA).encode(PAYLOAD))
    with pytest.raises((SchemaResolutionError, ValueError)):  # fastavro fails on such data too, only later
        schemaless_reader(data, parse_schema(SCHEMA), parse_schema(change))


def test_nested_enums_arrays_maps_and_promotions() -> None:
    old = {"type": "record", "name": "R", "fields": [
        {"name": "n", "type": "int"},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "by", "type": {"type": "map", "values": "float"}},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B"]}},
        {"name": "next", "type": ["null", "R"], "default": None},
    ]}
    promoted = {**old, "fields": [
        {"name": "n", "type": "long"},
        {"name": "tags", "type": {"type": "array", "items": "bytes"}},
        {"name": "by", "type": {"type": "map", "values": "double"}},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B", "C"]}},
        {"name": "next", "type": ["null", "R"], "default": None},
    ]}
    assert compatibility_problems(parse_schema(promoted), parse_schema(old)) == []
    narrowed = {**old, "fields": [
        {"name": "n", "type": "int"}, {"name": "tags", "type": {"type": "array", "items": "int"}},
        {"name": "by", "type": {"type": "map", "values": "int"}},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A"]}},
    ]}
    assert compatibility_problems(parse_schema(narrowed), parse_schema(old)) == [
        "tags[]: string cannot be read as int", "by{}: float cannot be read as int",
        "kind: enum symbols ['B'] are gone and the enum has no default"]
    check_backward(parse_schema(old), parse_schema(old))


def test_load_schema_reads_avsc_files(tmp_path: Path) -> None:
    (tmp_path / "s.avsc").write_text(json.dumps(SCHEMA))
    assert load_schema(tmp_path / "s.avsc")["name"] == "zeli8888.lab4.events.OrderPlacedEvent"


def test_export_checks_the_event_against_the_record() -> None:
    class Partial(Event):
        event_name = "ToyAvroPartial"
        order_number: str
        email: str

    class Wider(Event):
        event_name = "ToyAvroWider"
        order_number: str
        email: str
        first_name: str
        last_name: str
        total: float  # required, but not in the record

    service = Service("s", worker=1)
    with pytest.raises(ValueError, match="has no field firstName, lastName"):
        service.export("t", Partial, AvroCodec(SCHEMA))
    with pytest.raises(ValueError, match="does not carry total"):
        service.export("t", Wider, AvroCodec(SCHEMA))
    service.export("t", OrderPlaced, AvroCodec(SCHEMA))
    with pytest.raises(ValueError, match="exported twice"):
        service.export("u", OrderPlaced, AvroCodec(SCHEMA))


def test_a_subscription_reads_the_exported_topic_only_when_all_its_events_are_on_it() -> None:
    class Other(Event):
        event_name = "ToyAvroOther"
        n: int

    config = KafkaConfig("toyexport", export_template="run1.{topic}")
    spec = toy_export.notifier.subscriptions["handlers:shop"]
    exported = exported_topic(config, "notifier", spec, toy_export.shop.exports)
    assert isinstance(exported, ExportedRecords) and exported.topic == "run1.order-placed"
    assert exported_topic(config, "notifier", spec, []) is None
    assert subscription_topic(config, toy_export.system(), "notifier", spec) == "run1.order-placed"
    assert subscription_topic(config, toy_export.system(), "shop", SubscriptionSpec("x", "notifier")) == (
        "toyexport.notifier")  # nothing exported: the source service's own topic
    consumer = Service("consumer", worker=2)

    @consumer.on("shop", OrderPlaced, Other)
    async def handle(event: Event, uow: Any) -> None: ...

    with pytest.raises(ValueError, match="separate groups"):
        exported_topic(config, "consumer", consumer.subscriptions["handlers:shop"], toy_export.shop.exports)


async def test_embedded_consumers_still_read_the_log(tmp_path: Path) -> None:
    async with Runtime(toy_export.system(), tmp_path, clock=VirtualClock(), poll_interval=0.01) as rt:
        answer = await rt.client("shop").post("/orders", json={"order_number": "o1", "email": "a@b.c"})
        assert answer.status_code == 200, answer.text
        await rt.settle()
        assert await toy_export.sent(rt.service("notifier").uow()) == [("o1", "a@b.c: Hi John,Doe (SKU001)")]
