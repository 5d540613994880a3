"""JsonCodec: contract-shaped JSON values for exported events, read back into the event's payload."""

from __future__ import annotations

import json

import pytest

from junction.codecs import JsonCodec
from junction.events import Event
from junction.service import Service


class CodecUserCreated(Event):
    """A user was created (a toy of the pipeline's event)."""

    event_name = "test.codecs.UserCreated"
    user_id: int
    email: str


class CodecNested(Event):
    """An event with an object inside."""

    event_name = "test.codecs.Nested"
    order_number: str
    user_details: dict[str, str]


USER = JsonCodec(fields={"user_id": "userId", "email": "email"}, constants={"event": "user.created"})


def test_the_value_is_the_contracts_object_constants_first_and_compact() -> None:
    payload = CodecUserCreated(user_id=1, email="alice@example.com").payload()
    assert USER.encode(payload) == b'{"event":"user.created","user_id":1,"email":"alice@example.com"}'


def test_decoding_gives_the_payload_back_and_the_event_validates() -> None:
    event = CodecUserCreated(user_id=7, email="bob@example.com")
    decoded = USER.decode(USER.encode(event.payload()), USER.schema_id)
    assert decoded == {"userId": 7, "email": "bob@example.com"}
    assert CodecUserCreated.model_validate(decoded) == event


def test_dotted_paths_reach_into_objects_both_ways() -> None:
    codec = JsonCodec(fields={"order": "orderNumber", "mail": "userDetails.email"})
    payload = CodecNested(order_number="n1", user_details={"email": "a@b.c", "name": "A"}).payload()
    value = codec.encode(payload)
    assert json.loads(value) == {"order": "n1", "mail": "a@b.c"}
    assert codec.decode(value) == {"orderNumber": "n1", "userDetails": {"email": "a@b.c"}}


def test_without_fields_the_payload_goes_out_as_it_is() -> None:
    codec = JsonCodec(constants={"kind": "x"})
    assert json.loads(codec.encode({"a": 1})) == {"kind": "x", "a": 1}
    assert codec.decode(b'{"kind":"x","a":1}') == {"a": 1}


def test_a_record_of_another_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="event"):
        USER.decode(b'{"event":"user.deleted","user_id":1,"email":"a@b.c"}')
    with pytest.raises(ValueError, match="object"):
        USER.decode(b"[1, 2]")


def test_bind_refuses_a_path_the_event_does_not_have() -> None:
    service = Service("codec-toy", worker=900)
    with pytest.raises(ValueError, match="missing"):
        service.export("users", CodecUserCreated, JsonCodec(fields={"x": "missing"}))
    service.export("users", CodecUserCreated, USER)  # the right shape binds


def test_a_member_cannot_be_both_mapped_and_constant() -> None:
    with pytest.raises(ValueError, match="event"):
        JsonCodec(fields={"event": "email"}, constants={"event": "user.created"})


def test_the_schema_id_names_the_shape() -> None:
    same = JsonCodec(fields={"user_id": "userId", "email": "email"}, constants={"event": "user.created"})
    assert same.schema_id == USER.schema_id
    assert JsonCodec(fields={"user_id": "userId"}).schema_id != USER.schema_id
