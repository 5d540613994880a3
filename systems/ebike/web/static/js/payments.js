// Pending payments for admins: rows appear, change and leave as the server pushes payment changes
// (a customer adds credit, another admin decides), and after this admin's own decisions.

import { actionForm } from "./forms.js";
import { PAYMENT_UPDATED } from "./live.js";
import { euros } from "./map.js";

function decisions(id, status) {
  const forms = [];
  if (status !== "CONFIRMED") forms.push(actionForm("confirmPayment", "id", id, "Confirm", { then: "none" }));
  if (status === "PENDING") forms.push(actionForm("rejectPayment", "id", id, "Reject", { style: "danger", then: "none" }));
  return forms;
}

export function start(live) {
  const table = document.getElementById("payments");
  const empty = document.getElementById("payments-empty");
  const news = document.getElementById("payments-news");
  const filter = table.dataset.filter;
  const names = JSON.parse(document.getElementById("customer-names").textContent);

  function refreshEmpty() {
    const none = table.tBodies[0].rows.length === 0;
    table.hidden = none;
    empty.hidden = !none;
  }

  function apply(payment) {
    const row = table.querySelector(`tr[data-payment-id="${CSS.escape(payment.id)}"]`);
    const shown = !payment.deleted && (filter === "ALL" || payment.status === filter);
    if (!shown) {
      row?.remove();
      refreshEmpty();
      return;
    }
    if (row) {
      const badge = row.querySelector(".badge");
      badge.className = `badge status-${payment.status}`;
      badge.textContent = payment.status.toLowerCase();
      row.cells[4].replaceChildren(...decisions(payment.id, payment.status));
      return;
    }
    if (payment.amount === undefined) return; // a decision on a row this page does not show
    const fresh = table.tBodies[0].insertRow(0);
    fresh.dataset.paymentId = payment.id;
    const badge = Object.assign(document.createElement("span"), {
      className: `badge status-${payment.status}`, textContent: payment.status.toLowerCase(),
    });
    const values = ["just now", names[payment.customerId] ?? payment.customerId, badge, euros(payment.amount)];
    for (const value of values) fresh.insertCell().append(value);
    fresh.cells[3].className = "num money";
    fresh.insertCell().append(...decisions(payment.id, payment.status));
    news.textContent = `New payment: ${euros(payment.amount)} from ${names[payment.customerId] ?? "a customer"}.`;
    news.hidden = false;
    refreshEmpty();
  }

  document.addEventListener("api:done", ({ detail: { op, result } }) => {
    if (op === "confirmPayment" || op === "rejectPayment") apply({ ...result, deleted: false });
  });
  live.subscribe(PAYMENT_UPDATED, {}, ({ paymentUpdated }) => apply(paymentUpdated));
}
