// The customer's ride page: set one's position by clicking the map, pick a vehicle on the map and
// rent it, call an a-bike and watch it come. Balance, rental cost and vehicles are pushed live.

import { ACTIVE_RENTAL_UPDATED, CREDIT_BALANCE_UPDATED, VEHICLE_UPDATED, showBalance } from "./live.js";
import { actionForm } from "./forms.js";
import { CityMap, euros, number, percent, updateVehicleRow, vehicleTitle } from "./map.js";

const CALLED = "ebike.called-abike"; // the a-bike this tab called, kept across reloads of the page

const $ = (selector) => document.querySelector(selector);

export function start(live) {
  const map = CityMap.find();
  const positionForm = $("#position-form");
  const requestForm = $("#abike-request");
  const rentForm = $("#abike-rent");
  const cancelForm = $("#abike-cancel");
  const statusLine = $("#abike-status");
  const selected = $("#selected");
  const vehicles = new Map(); // id -> the latest Vehicle known
  const fees = JSON.parse(selected.dataset.fees); // {unlock: {TYPE: cents}, minute: {TYPE: cents}}

  for (const marker of document.querySelectorAll("#city-map .vehicle")) {
    const { id, type, status, x, y, battery } = marker.dataset;
    vehicles.set(id, { id, type, status, battery: Number(battery), position: { x: Number(x), y: Number(y) } });
  }

  // -- own position -----------------------------------------------------------------------------
  function setPosition({ x, y }) {
    positionForm.elements["position.x"].value = x;
    positionForm.elements["position.y"].value = y;
    positionForm.requestSubmit();
  }
  positionForm.addEventListener("api:done", () => {
    const x = Number(positionForm.elements["position.x"].value);
    const y = Number(positionForm.elements["position.y"].value);
    map.moveMe(x, y);
    requestForm.elements["position.x"].value = x;
    requestForm.elements["position.y"].value = y;
    showCalled();
  });

  // -- choosing a vehicle on the map --------------------------------------------------------------
  function choose(id) {
    const v = vehicles.get(id);
    if (!v || !["AVAILABLE", "WAITING"].includes(v.status)) return;
    map.select(id);
    $("#selected-text").textContent = `${v.type} ${id}, battery ${percent(v.battery)}: `
      + `${euros(fees.unlock[v.type])} to unlock, then ${euros(fees.minute[v.type])} a minute.`;
    selected.querySelector('input[name="vehicleId"]').value = id;
    selected.querySelector("output").textContent = "";
    selected.hidden = false;
  }
  map.onClick((point, vehicleId) => (vehicleId ? choose(vehicleId) : setPosition(point)));

  // -- the called a-bike ----------------------------------------------------------------------------
  let called = sessionStorage.getItem(CALLED);
  for (const v of vehicles.values()) if (v.status === "WAITING") called = v.id; // only the caller sees it

  function showCalled() {
    const v = called ? vehicles.get(called) : null;
    const waiting = v?.status === "WAITING";
    requestForm.hidden = Boolean(called);
    cancelForm.hidden = !called;
    rentForm.hidden = !waiting;
    if (!called) {
      statusLine.textContent = "";
      return;
    }
    rentForm.elements.vehicleId.value = called;
    if (!v) {
      statusLine.textContent = `A-bike ${called} is on its way.`;
    } else if (waiting) {
      statusLine.textContent = `Your a-bike ${called} is waiting for you at (${number(v.position.x)}, ${number(v.position.y)}).`;
    } else {
      const me = map.me();
      const distance = me ? Math.hypot(me.x - v.position.x, me.y - v.position.y) : null;
      statusLine.textContent = `A-bike ${called} is coming: ${distance === null ? "" : `${number(distance)} away, `}`
        + `battery ${percent(v.battery)}.`;
    }
  }
  function forget() {
    called = null;
    sessionStorage.removeItem(CALLED);
    showCalled();
  }
  requestForm.addEventListener("api:done", (event) => {
    const v = event.detail.result;
    called = v.id;
    sessionStorage.setItem(CALLED, v.id);
    vehicles.set(v.id, v);
    map.upsertVehicle(v);
    showCalled();
  });
  cancelForm.addEventListener("api:done", forget);
  cancelForm.addEventListener("api:error", (event) => {
    if (event.detail.error.code === "NOT_FOUND") forget();
  });
  rentForm.addEventListener("api:done", () => sessionStorage.removeItem(CALLED));
  showCalled();

  // -- the list of vehicles one can rent, kept in step with the map ---------------------------------
  const table = $("#available-vehicles");
  function syncRow(id, v) {
    let row = table.querySelector(`tr[data-vehicle-id="${CSS.escape(id)}"]`);
    if (!v || !["AVAILABLE", "WAITING"].includes(v.status)) {
      row?.remove();
    } else if (!row) {
      row = table.tBodies[0].insertRow();
      row.dataset.vehicleId = id;
      const name = document.createElement("small");
      name.className = "id";
      name.textContent = id;
      row.insertCell().append(`${v.type} `, name);
      row.insertCell().dataset.field = "position";
      row.insertCell().dataset.field = "battery";
      row.insertCell().textContent = `${euros(fees.unlock[v.type])} + ${euros(fees.minute[v.type])}/min`;
      row.insertCell().append(actionForm("startRental", "vehicleId", id, "Rent"));
    }
    if (row) updateVehicleRow(v);
    const empty = table.tBodies[0].rows.length === 0;
    table.hidden = empty;
    $("#available-vehicles-empty").hidden = !empty;
  }

  // -- what the server pushes -----------------------------------------------------------------------
  live.subscribe(VEHICLE_UPDATED, {}, ({ vehicleUpdated: { id, vehicle } }) => {
    syncRow(id, vehicle);
    if (!vehicle) {
      vehicles.delete(id);
      map.removeVehicle(id);
      if (id === called) forget();
      return;
    }
    vehicles.set(id, vehicle);
    map.upsertVehicle(vehicle);
    if (vehicle.status === "COMING" || vehicle.status === "WAITING") {
      // a customer is shown only the a-bike coming to or waiting for them
      if (called !== id) sessionStorage.setItem(CALLED, id);
      called = id;
    } else if (id === called && vehicle.status !== "RENTED") {
      forget(); // cancelled, timed out, or returning
    }
    if (id === called) showCalled();
    if (!selected.hidden && selected.querySelector('input[name="vehicleId"]').value === id) {
      $("#selected-text").textContent = `${vehicleTitle(vehicle)}.`;
    }
  });

  live.subscribe(CREDIT_BALANCE_UPDATED, {}, ({ creditBalanceUpdated }) => showBalance(creditBalanceUpdated));

  live.subscribe(ACTIVE_RENTAL_UPDATED, {}, ({ activeRentalUpdated: rental }) => {
    const panel = $("#rental");
    if (panel.dataset.rental === rental.id && !rental.end) {
      const cost = panel.querySelector('[data-live="rental-cost"]');
      if (cost) cost.textContent = euros(rental.cost ?? 0);
    } else if (panel.dataset.rental !== rental.id && !rental.end) {
      location.reload(); // a rental started elsewhere (another tab): show it
    } else if (panel.dataset.rental === rental.id && rental.end) {
      location.reload(); // ended elsewhere
    }
  });
}
