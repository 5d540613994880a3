"""Avro for events that leave the platform on a named topic: a codec over fastavro, and schema evolution checks.

    codec = AvroCodec.from_file("order-placed.avsc", previous=["order-placed.v1.avsc"])
    order.export("order-placed", OrderPlaced, codec)

Values are schemaless Avro binary (no container header, no registry framing), so any Avro reader
holding the schema decodes them. A record's fields come from the event's JSON payload: by default
each Avro field from the payload key of the same name (the payload is camelCase), or as ``fields``
maps them (``{"email": "userDetails.email"}``). ``schema_id`` (the CRC-64-AVRO fingerprint of the
schema's canonical form) goes with every record, so a reader resolves data written with an older
schema it was told about (``previous``) into its own shape.

A new schema must read what the previous one wrote (backward compatibility, Avro's resolution
rules): ``AvroCodec`` refuses a ``previous`` schema it cannot read, with ``IncompatibleSchema``
saying which field or type breaks it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form

from junction.events import Event

Schema = Any  # a parsed Avro schema: a dict, a list (a union) or a type name
PROMOTIONS = {  # writer type -> reader types that can read it (Avro specification, "Schema Resolution")
    "int": {"int", "long", "float", "double"},
    "long": {"long", "float", "double"},
    "float": {"float", "double"},
    "string": {"string", "bytes"},
    "bytes": {"bytes", "string"},
}
NAMED = {"record", "enum", "fixed"}


class IncompatibleSchema(ValueError):
    """A schema cannot read data written with another one; the message lists why."""


def load_schema(source: str | Path | Mapping[str, Any]) -> Schema:
    """A parsed schema from an ``.avsc`` file or a schema dict."""
    raw = json.loads(Path(source).read_text()) if isinstance(source, str | Path) else dict(source)
    return parse_schema(raw)


def schema_id(schema: Schema) -> str:
    """The schema's CRC-64-AVRO fingerprint (hex) of its parsing canonical form."""
    return str(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


def compatibility_problems(reader: Schema, writer: Schema) -> list[str]:
    """Why ``reader`` cannot read data written with ``writer`` ([] when it can)."""
    return _Resolver(reader, writer).problems()


def check_backward(new: Schema, *previous: Schema, name: str = "schema") -> None:
    """Refuse ``new`` unless it reads what each ``previous`` schema wrote (``IncompatibleSchema``)."""
    for n, old in enumerate(previous, 1):
        if problems := compatibility_problems(new, old):
            listed = "; ".join(problems)
            raise IncompatibleSchema(f"{name} cannot read data written with previous schema #{n}: {listed}")


class _Resolver:
    """Avro's schema resolution rules, checked ahead of any data."""

    def __init__(self, reader: Schema, writer: Schema) -> None:
        self.reader, self.writer = reader, writer
        self.reader_names: dict[str, Any] = reader.get("__named_schemas", {}) if isinstance(reader, dict) else {}
        self.writer_names: dict[str, Any] = writer.get("__named_schemas", {}) if isinstance(writer, dict) else {}
        self.found: list[str] = []
        self._seen: set[tuple[str, str]] = set()  # record pairs already checked (recursive types)

    def problems(self) -> list[str]:
        self.check(self.reader, self.writer, "")
        return self.found

    def check(self, reader: Schema, writer: Schema, where: str) -> bool:
        reader, writer = self._named(reader, self.reader_names), self._named(writer, self.writer_names)
        if isinstance(writer, list):  # every branch the writer may have used must resolve
            return all([self.check(reader, branch, where) for branch in writer])
        if isinstance(reader, list):
            if any(_Resolver(branch, writer).quiet(self) for branch in reader):
                return True
            return self._fail(where, f"{_type(writer)} is in none of the union's branches {[_type(b) for b in reader]}")
        r_type, w_type = _type(reader), _type(writer)
        if w_type in PROMOTIONS or w_type in {"null", "boolean", "double"}:
            if r_type == w_type or r_type in PROMOTIONS.get(w_type, set()):
                return True
            return self._fail(where, f"{w_type} cannot be read as {r_type}")
        if r_type != w_type:
            return self._fail(where, f"{w_type} cannot be read as {r_type}")
        if r_type == "array":
            return self.check(reader["items"], writer["items"], f"{where}[]")
        if r_type == "map":
            return self.check(reader["values"], writer["values"], f"{where}{{}}")
        if not _same_name(reader, writer):
            return self._fail(where, f"{writer['name']} is not {reader['name']} (nor one of its aliases)")
        if r_type == "fixed" and reader["size"] != writer["size"]:
            return self._fail(where, f"fixed size {writer['size']} cannot be read as {reader['size']}")
        if r_type == "enum":
            missing = [s for s in writer["symbols"] if s not in reader["symbols"]]
            if missing and "default" not in reader:
                return self._fail(where, f"enum symbols {missing} are gone and the enum has no default")
            return True
        if r_type == "record":
            return self._record(reader, writer, where)
        return True

    def _record(self, reader: dict[str, Any], writer: dict[str, Any], where: str) -> bool:
        pair = (reader["name"], writer["name"])
        if pair in self._seen:
            return True
        self._seen.add(pair)
        written = {f["name"]: f for f in writer["fields"]}
        ok = True
        for field in reader["fields"]:
            names = [field["name"], *field.get("aliases", [])]
            source = next((written[n] for n in names if n in written), None)
            path = f"{where}.{field['name']}" if where else field["name"]
            if source is None:
                if "default" not in field:
                    ok = self._fail(path, "added without a default (old data has no value for it)")
            elif not self.check(field["type"], source["type"], path):
                ok = False
        return ok

    def quiet(self, parent: _Resolver) -> bool:
        """Whether this pair resolves, without reporting (a union branch being tried)."""
        self.reader_names, self.writer_names = parent.reader_names, parent.writer_names
        self._seen = set(parent._seen)  # the records being checked further up count as resolved (recursion)
        return not self.problems()

    def _named(self, schema: Schema, names: Mapping[str, Any]) -> Schema:
        return names.get(schema, schema) if isinstance(schema, str) else schema

    def _fail(self, where: str, why: str) -> bool:
        self.found.append(f"{where or 'the record'}: {why}")
        return False


def _type(schema: Schema) -> str:
    if isinstance(schema, list):
        return "union"
    return str(schema["type"] if isinstance(schema, dict) else schema)


def _same_name(reader: Mapping[str, Any], writer: Mapping[str, Any]) -> bool:
    short = writer["name"].split(".")[-1]
    aliases = reader.get("aliases", [])
    return short == reader["name"].split(".")[-1] or writer["name"] in aliases or short in aliases


class AvroCodec:
    """Writes an event payload as one schemaless Avro record and reads it back (a ``junction.service.Codec``)."""

    def __init__(self, schema: Mapping[str, Any], fields: Mapping[str, str] | None = None,
                 previous: Sequence[Mapping[str, Any]] = ()) -> None:
        self.schema = _record(schema)
        self.name = str(self.schema["name"])
        avro_fields = [f["name"] for f in self.schema["fields"]]
        self.fields = {name: name for name in avro_fields} | dict(fields or {})
        if unknown := sorted(set(self.fields) - set(avro_fields)):
            raise ValueError(f"{self.name} has no field {', '.join(unknown)}")
        self.previous = [_record(p) for p in previous]
        check_backward(self.schema, *self.previous, name=self.name)
        self.schema_id = schema_id(self.schema)
        self._writers: dict[str, dict[str, Any]] = {schema_id(p): p for p in self.previous}
        self._writers[self.schema_id] = self.schema

    @classmethod
    def from_file(cls, path: str | Path, fields: Mapping[str, str] | None = None,
                  previous: Sequence[str | Path] = ()) -> AvroCodec:
        """The codec of an ``.avsc`` file; ``previous`` are the files of the versions before it, oldest first."""
        return cls(load_schema(path), fields, [load_schema(p) for p in previous])

    def bind(self, event: type[Event]) -> None:
        """Check both ways: every Avro field comes from a payload field of ``event``, and ``event`` can be
        built from the record alone (a consumer of the topic gets nothing else)."""
        payload_fields = {f.alias or name: f for name, f in event.model_fields.items()}
        carried = {path.split(".")[0] for path in self.fields.values()}
        if missing := sorted(carried - set(payload_fields)):
            raise ValueError(f"{self.name}: {event.event_name} has no field {', '.join(missing)}")
        if required := sorted(k for k, f in payload_fields.items() if f.is_required() and k not in carried):
            raise ValueError(f"{self.name} does not carry {', '.join(required)} of {event.event_name}, which have "
                             "no default: a consumer of the topic could not build the event")

    def encode(self, payload: Mapping[str, Any]) -> bytes:
        """The record value for an event's JSON payload."""
        return self.write({field: _get(payload, path) for field, path in self.fields.items()})

    def decode(self, data: bytes, schema_id: str | None = None) -> dict[str, Any]:
        """The event's JSON payload from a record value written with schema ``schema_id`` (default: this one)."""
        record = self.read(data, schema_id)
        payload: dict[str, Any] = {}
        for field, path in self.fields.items():
            _put(payload, path, record.get(field))
        return payload

    def write(self, record: Mapping[str, Any]) -> bytes:
        """One Avro record as schemaless binary."""
        out = io.BytesIO()
        schemaless_writer(out, self.schema, dict(record))
        return out.getvalue()

    def read(self, data: bytes, schema_id: str | None = None) -> dict[str, Any]:
        """One Avro record, resolved from the schema it was written with (by id) into this one."""
        writer = self._writers.get(schema_id or self.schema_id)
        if writer is None:
            raise ValueError(f"{self.name}: data written with schema {schema_id}, which this reader does not know")
        reader = None if writer is self.schema else self.schema
        record = schemaless_reader(io.BytesIO(data), writer, reader)
        if not isinstance(record, dict):
            raise ValueError(f"{self.name}: the data is not a record")
        return record


def _record(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A parsed record schema (parsed here unless fastavro already did)."""
    parsed = schema if schema.get("__fastavro_parsed") else parse_schema(dict(schema))
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        raise ValueError("an exported event is an Avro record")
    return parsed


def _get(payload: Mapping[str, Any], path: str) -> Any:
    value: Any = payload
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _put(payload: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        payload = payload.setdefault(part, {})
    payload[last] = value


__all__ = ["AvroCodec", "IncompatibleSchema", "check_backward", "compatibility_problems", "load_schema", "schema_id"]
