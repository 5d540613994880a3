// Entry point of every page: forms send mutations; the page's own module (by <body data-page>)
// subscribes to the changes the server pushes over the one WebSocket.

import { enableForms } from "./forms.js";
import { LiveClient } from "./graphql.js";

const PAGE_MODULES = {
  ride: "./ride.js",
  wallet: "./wallet.js",
  "admin-map": "./admin.js",
  "admin-fleet": "./admin.js",
  "admin-customers": "./admin.js",
  "admin-payments": "./payments.js",
};

const STATE_TEXT = { connecting: "connecting…", live: "live", offline: "offline, reconnecting" };

function showState(state) {
  const badge = document.getElementById("live");
  if (!badge) return;
  badge.dataset.state = state;
  badge.textContent = STATE_TEXT[state] ?? state;
}

enableForms();
const page = document.body.dataset.page;
if (document.body.dataset.role && PAGE_MODULES[page]) {
  const module = await import(PAGE_MODULES[page]);
  module.start(new LiveClient({ onState: showState }), page);
}
