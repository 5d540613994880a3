// The city map (an SVG the server rendered, see templates/_map.html): markers are moved, added and
// removed here as the server pushes changes. World coordinates are the SVG's user units, so a
// marker at (x, y) is translated by (x, y) and a click converts back through the screen matrix.

const SVG = "http://www.w3.org/2000/svg";
const LETTER = { BIKE: "B", EBIKE: "E", ABIKE: "A" };
const MAX_GLIDE_MS = 1000;

export const number = (value) => {
  const text = Number(value).toFixed(1);
  return text.endsWith(".0") ? text.slice(0, -2) : text;
};
/** An RFC 3339 instant to the second, as the server prints it ("2025-01-01 12:00:00"). */
export const instant = (value) => (value ? String(value).replace("T", " ").slice(0, 19) : "\u2013");
export const percent = (value) => `${Math.round(Number(value) * 100)} %`;
export const euros = (cents) => {
  if (cents === null || cents === undefined) return "–";
  const sign = cents < 0 ? "-" : "";
  const abs = Math.abs(Math.trunc(cents));
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, "0")} €`;
};

function element(name, attributes = {}, text = null) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== null) node.textContent = text;
  return node;
}

export function vehicleTitle(v) {
  return `${v.type} ${v.id}: ${String(v.status ?? "AVAILABLE").toLowerCase()}, battery ${percent(v.battery)}, `
    + `at (${number(v.position.x)}, ${number(v.position.y)})`;
}

export class CityMap {
  constructor(svg) {
    this.svg = svg;
    this.unit = Number(svg.dataset.unit) || 1.5;
    this.selectable = svg.dataset.selectable === "true";
    this.layers = Object.fromEntries(
      ["stations", "targets", "customers", "vehicles"].map((name) => [name, svg.querySelector(`.layer-${name}`)]),
    );
    this.lastMove = new Map(); // vehicle id -> time of its last position change (for the glide)
  }

  static find(root = document) {
    const svg = root.getElementById ? root.getElementById("city-map") : root.querySelector("#city-map");
    return svg ? new CityMap(svg) : null;
  }

  /** The map position under a mouse event, to the half unit (a pixel is a fraction of a unit). */
  pointAt(event) {
    const point = this.svg.createSVGPoint();
    point.x = event.clientX;
    point.y = event.clientY;
    const world = point.matrixTransform(this.svg.getScreenCTM().inverse());
    return { x: Math.round(world.x * 2) / 2, y: Math.round(world.y * 2) / 2 };
  }

  /** `handler(point, vehicleId | null)` on each click (and Enter/Space on a focused vehicle). */
  onClick(handler) {
    this.svg.addEventListener("click", (event) => {
      const marker = event.target.closest?.(".vehicle");
      handler(this.pointAt(event), marker ? marker.dataset.id : null);
    });
    this.svg.addEventListener("keydown", (event) => {
      const marker = event.target.closest?.(".vehicle");
      if (marker && (event.key === "Enter" || event.key === " ")) {
        event.preventDefault();
        handler({ x: Number(marker.dataset.x), y: Number(marker.dataset.y) }, marker.dataset.id);
      }
    });
  }

  place(marker, x, y, glide = false) {
    marker.dataset.x = x;
    marker.dataset.y = y;
    if (glide) {
      // Glide over the time since the previous push so a moving bike looks continuous at any time scale.
      const now = performance.now();
      const since = now - (this.lastMove.get(marker.dataset.id) ?? now - MAX_GLIDE_MS);
      this.lastMove.set(marker.dataset.id, now);
      marker.style.transition = `transform ${Math.min(since, MAX_GLIDE_MS)}ms linear`;
    }
    marker.style.transform = `translate(${x}px, ${y}px)`;
    marker.setAttribute("transform", `translate(${x} ${y})`);
  }

  vehicle(id) {
    return this.layers.vehicles.querySelector(`.vehicle[data-id="${CSS.escape(id)}"]`);
  }

  /** Draw `v` (a Vehicle from the API) where it is now, adding its marker when new. */
  upsertVehicle(v) {
    let marker = this.vehicle(v.id);
    const moved = marker && (Number(marker.dataset.x) !== v.position.x || Number(marker.dataset.y) !== v.position.y);
    if (!marker) {
      marker = element("g", { class: "vehicle", "data-id": v.id });
      if (this.selectable) {
        marker.setAttribute("tabindex", "0");
        marker.setAttribute("role", "button");
      }
      marker.append(element("title"), element("circle", { r: this.unit }),
        element("text", { class: "type", dy: "0.35em" }, LETTER[v.type] ?? "?"));
      this.layers.vehicles.append(marker);
    }
    marker.dataset.type = v.type;
    marker.dataset.status = v.status ?? "AVAILABLE";
    marker.dataset.battery = v.battery;
    marker.querySelector("title").textContent = vehicleTitle(v);
    this.place(marker, v.position.x, v.position.y, Boolean(moved));
    this.drawTarget(v);
    return marker;
  }

  drawTarget(v) {
    if (!this.layers.targets) return;
    let line = this.layers.targets.querySelector(`line[data-for="${CSS.escape(v.id)}"]`);
    if (!v.target) {
      line?.remove();
      return;
    }
    if (!line) {
      line = element("line", { "data-for": v.id });
      this.layers.targets.append(line);
    }
    for (const [key, value] of [["x1", v.position.x], ["y1", v.position.y], ["x2", v.target.x], ["y2", v.target.y]]) {
      line.setAttribute(key, value);
    }
  }

  removeVehicle(id) {
    this.vehicle(id)?.remove();
    this.layers.targets?.querySelector(`line[data-for="${CSS.escape(id)}"]`)?.remove();
  }

  addStation(s) {
    const u = this.unit;
    const marker = element("g", { class: "station", "data-id": s.id });
    marker.append(
      element("title", {}, `Station ${s.name} at (${number(s.position.x)}, ${number(s.position.y)})`),
      element("rect", { x: -u, y: -u, width: 2 * u, height: 2 * u, rx: u * 0.3 }),
      element("text", { class: "label", y: u * 2.6 }, s.name),
    );
    this.place(marker, s.position.x, s.position.y);
    this.layers.stations.append(marker);
  }

  removeStation(id) {
    this.layers.stations.querySelector(`.station[data-id="${CSS.escape(id)}"]`)?.remove();
  }

  /** Draw a customer (admin maps), adding the marker when new. */
  upsertCustomer(c) {
    if (!this.layers.customers) return;
    const u = this.unit;
    let marker = this.layers.customers.querySelector(`.customer[data-id="${CSS.escape(c.id)}"]`);
    if (!marker) {
      marker = element("g", { class: "customer", "data-id": c.id });
      marker.append(element("title"), element("path", { d: `M0 ${-u} L${u} 0 L0 ${u} L${-u} 0 Z` }),
        element("text", { class: "label", y: u * 2.4 }, c.name));
      this.layers.customers.append(marker);
    }
    marker.querySelector("title").textContent =
      `Customer ${c.name} at (${number(c.position.x)}, ${number(c.position.y)})`;
    this.place(marker, c.position.x, c.position.y);
  }

  /** Move the viewer's own marker ("you"). */
  moveMe(x, y) {
    const me = this.svg.querySelector("#me");
    if (!me) return;
    me.querySelector("title").textContent = `You are at (${number(x)}, ${number(y)})`;
    this.place(me, x, y);
  }

  me() {
    const me = this.svg.querySelector("#me");
    return me ? { x: Number(me.dataset.x), y: Number(me.dataset.y) } : null;
  }

  select(id) {
    for (const marker of this.layers.vehicles.querySelectorAll(".vehicle.selected")) marker.classList.remove("selected");
    if (id) this.vehicle(id)?.classList.add("selected");
  }
}

/** Rewrite the live cells of a vehicle's table row, if the page has one. */
export function updateVehicleRow(v) {
  const row = document.querySelector(`tr[data-vehicle-id="${CSS.escape(v.id)}"]`);
  if (!row) return;
  const cell = (field) => row.querySelector(`[data-field="${field}"]`);
  const status = cell("status");
  if (status) {
    status.className = `badge status-${v.status}`;
    status.textContent = String(v.status).toLowerCase();
  }
  if (cell("position")) cell("position").textContent = `(${number(v.position.x)}, ${number(v.position.y)})`;
  if (cell("target")) cell("target").textContent = v.target ? `(${number(v.target.x)}, ${number(v.target.y)})` : "–";
  if (cell("battery")) cell("battery").textContent = percent(v.battery);
}
