"""stations: named points of the city where a-bikes return and charge."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator
from sqlalchemy import Column, Float, String, select

from ebike.contracts.api import Dto, rfc3339
from ebike.contracts.events import StationCreated, StationDeleted, StationUpdated
from junction.aggregate import Aggregate
from junction.errors import NotFound
from junction.events import Event
from junction.service import Service
from junction.uow import UnitOfWork

service = Service("stations", worker=2)

view = service.table(
    "stations_view",
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("position_x", Float, nullable=False),
    Column("position_y", Float, nullable=False),
    Column("created_at", String, nullable=False),
    Column("updated_at", String, nullable=False),
)
stations_view = service.projection("stations", tables=[view])


class Station(Aggregate):
    stream_type = "station"
    name: str = ""
    position_x: float = 0.0
    position_y: float = 0.0
    deleted: bool = False

    def apply(self, event: Event) -> None:
        match event:
            case StationCreated() | StationUpdated():
                self.name, self.position_x, self.position_y = event.name, event.position_x, event.position_y
            case StationDeleted():
                self.deleted = True


class StationIn(Dto):
    name: str = Field(min_length=1)
    position_x: float
    position_y: float

    @field_validator("name")
    @classmethod
    def not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be blank")
        return value


class StationOut(Dto):
    id: str
    name: str
    position_x: float
    position_y: float
    created_at: str
    updated_at: str


def _out(row: Any) -> StationOut:
    return StationOut(id=row["id"], name=row["name"], position_x=row["position_x"], position_y=row["position_y"],
                      created_at=row["created_at"], updated_at=row["updated_at"])


@service.route("GET", "/stations")
async def list_stations(uow: UnitOfWork) -> list[StationOut]:
    rows = await uow.fetch_all(select(view).order_by(view.c.id))
    return [_out(r) for r in rows]


@service.route("PUT", "/stations")
async def create_station(body: StationIn, uow: UnitOfWork) -> StationOut:
    station = await uow.create(Station, uow.new_id())
    station.record(StationCreated(id=station.id, name=body.name, position_x=body.position_x,
                                  position_y=body.position_y))
    now = rfc3339(uow.now())
    return StationOut(id=station.id, name=body.name, position_x=body.position_x, position_y=body.position_y,
                      created_at=now, updated_at=now)


async def _existing(uow: UnitOfWork, station_id: str) -> Station:
    station = await uow.load(Station, station_id)
    if station is None or station.deleted:
        raise NotFound("station not found")
    return station


@service.route("PATCH", "/stations/{station_id}")
async def update_station(station_id: str, body: StationIn, uow: UnitOfWork) -> StationOut:
    station = await _existing(uow, station_id)
    station.record(StationUpdated(id=station.id, name=body.name, position_x=body.position_x,
                                  position_y=body.position_y))
    row = await uow.fetch_one(select(view).where(view.c.id == station_id))
    created = row["created_at"] if row else rfc3339(uow.now())
    return StationOut(id=station.id, name=body.name, position_x=body.position_x, position_y=body.position_y,
                      created_at=created, updated_at=rfc3339(uow.now()))


@service.route("DELETE", "/stations/{station_id}")
async def delete_station(station_id: str, uow: UnitOfWork) -> StationOut:
    station = await _existing(uow, station_id)
    row = await uow.fetch_one(select(view).where(view.c.id == station_id))
    station.record(StationDeleted(id=station.id))
    now = rfc3339(uow.now())
    return StationOut(id=station.id, name=station.name, position_x=station.position_x,
                      position_y=station.position_y, created_at=row["created_at"] if row else now, updated_at=now)


@stations_view.on("stations", StationCreated, StationUpdated, StationDeleted)
async def project(event: StationCreated | StationUpdated | StationDeleted, uow: UnitOfWork) -> None:
    at = rfc3339(uow.event_time())
    match event:
        case StationCreated():
            uow.execute(view.insert().values(id=event.id, name=event.name, position_x=event.position_x,
                                             position_y=event.position_y, created_at=at, updated_at=at))
        case StationUpdated():
            uow.execute(view.update().where(view.c.id == event.id).values(
                name=event.name, position_x=event.position_x, position_y=event.position_y, updated_at=at))
        case StationDeleted():
            uow.execute(view.delete().where(view.c.id == event.id))
