// Admin pages with the city map or live tables: every vehicle and customer as the server pushes
// them; on the fleet page, clicks on the map fill the position of the form being filled in, and
// created or deleted stations and vehicles appear or vanish without a reload (the stations list is
// an eventually consistent view, so a reload right after a create could miss the new station).

import { ADMIN_VEHICLE_UPDATED, CUSTOMER_UPDATED } from "./live.js";
import { actionForm } from "./forms.js";
import { CityMap, euros, instant, number, updateVehicleRow } from "./map.js";

function cell(content, className = "") {
  const td = document.createElement("td");
  if (className) td.className = className;
  if (content instanceof Node) td.append(content);
  else td.textContent = content;
  return td;
}

function named(text, id) {
  const span = document.createElement("span");
  span.append(`${text} `);
  const small = Object.assign(document.createElement("small"), { className: "id", textContent: id });
  span.append(small);
  return span;
}

function tableBody(id) {
  const table = document.getElementById(id);
  if (!table) return null;
  table.hidden = false;
  const empty = document.getElementById(`${id}-empty`);
  if (empty) empty.hidden = true;
  return table.tBodies[0];
}

function addStationRow(s) {
  const body = tableBody("stations");
  if (!body) return;
  const row = document.createElement("tr");
  row.dataset.stationId = s.id;
  row.append(cell(named(s.name, s.id)), cell(`(${number(s.position.x)}, ${number(s.position.y)})`),
    cell(actionForm("deleteStation", "id", s.id, "Delete", { style: "danger", then: "remove-row" })));
  body.prepend(row);
}

function addVehicleRow(v) {
  const body = tableBody("vehicles");
  if (!body || body.querySelector(`tr[data-vehicle-id="${CSS.escape(v.id)}"]`)) return;
  const row = document.createElement("tr");
  row.dataset.vehicleId = v.id;
  const status = Object.assign(document.createElement("span"), { className: `badge status-${v.status}` });
  status.dataset.field = "status";
  status.textContent = v.status.toLowerCase();
  const live = (field) => {
    const td = cell("");
    td.dataset.field = field;
    return td;
  };
  row.append(cell(named(v.type, v.id)), cell(status), live("position"), live("target"), live("battery"), cell("–"),
    cell(actionForm("deleteVehicle", "id", v.id, "Delete", { style: "danger", then: "remove-row" })));
  body.prepend(row);
  updateVehicleRow(v);
}

/** Rewrite the live fields of a customer's table row or list item, if the page has one. */
function updateCustomer(c) {
  const entry = document.querySelector(`[data-customer-id="${CSS.escape(c.id)}"]`);
  if (!entry) return;
  const field = (name) => entry.querySelector(`[data-field="${name}"]`);
  const set = (name, text) => {
    if (field(name)) field(name).textContent = text;
  };
  set("balance", euros(c.creditBalance));
  field("balance")?.classList.toggle("negative", c.creditBalance < 0);
  set("position", `(${number(c.position.x)}, ${number(c.position.y)})`);
  set("rental", c.activeRental ? `${c.activeRental.vehicleType} since ${instant(c.activeRental.start)}` : "\u2013");
  set("cost", c.activeRental ? euros(c.activeRental.cost) : "\u2013");
  if (field("riding")) field("riding").hidden = !c.activeRental;
}

function fillPositionOnClick(map) {
  const forms = [...document.querySelectorAll("form[data-map-target]")];
  let target = forms[0];
  for (const form of forms) {
    for (const type of ["focusin", "input", "change"]) form.addEventListener(type, () => (target = form));
  }
  map.onClick((point) => {
    if (!target) return;
    target.elements["position.x"].value = point.x;
    target.elements["position.y"].value = point.y;
    target.querySelector("input:not([type=hidden])")?.focus();
  });
}

export function start(live, page) {
  const map = CityMap.find();
  if (page === "admin-fleet" && map) {
    fillPositionOnClick(map);
    document.addEventListener("api:done", ({ detail: { op, result } }) => {
      if (op === "createStation") {
        map.addStation(result);
        addStationRow(result);
        document.getElementById("station-name").value = "";
      } else if (op === "deleteStation") {
        map.removeStation(result.id);
      } else if (op === "createVehicle") {
        map.upsertVehicle(result);
        addVehicleRow(result);
      } else if (op === "deleteVehicle") {
        map.removeVehicle(result.id);
      }
    });
  }
  if (map) {
    live.subscribe(ADMIN_VEHICLE_UPDATED, {}, ({ vehicleUpdated: { id, vehicle } }) => {
      if (!vehicle) {
        map.removeVehicle(id);
        document.querySelector(`tr[data-vehicle-id="${CSS.escape(id)}"]`)?.remove();
        return;
      }
      map.upsertVehicle(vehicle);
      updateVehicleRow(vehicle);
    });
  }
  live.subscribe(CUSTOMER_UPDATED, {}, ({ customerUpdated }) => {
    map?.upsertCustomer(customerUpdated);
    updateCustomer(customerUpdated);
  });
}
