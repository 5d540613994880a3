// The wallet: the balance is pushed live; when it changes (a payment confirmed, a rental charged)
// the payments' statuses are read again once, so a confirmed payment stops looking pending.

import { request } from "./graphql.js";
import { CREDIT_BALANCE_UPDATED, showBalance } from "./live.js";

const STATUSES = "query PaymentStatuses { transactions { __typename ... on Payment { id status } } }";

async function refreshStatuses() {
  const { transactions } = await request(STATUSES);
  for (const t of transactions) {
    if (t.__typename !== "Payment") continue;
    const row = document.querySelector(`tr[data-payment-id="${CSS.escape(t.id)}"]`);
    const badge = row?.querySelector(".badge");
    if (!badge || badge.textContent === t.status.toLowerCase()) continue;
    badge.className = `badge status-${t.status}`;
    badge.textContent = t.status.toLowerCase();
    row.querySelector(".money")?.classList.toggle("muted", t.status !== "CONFIRMED");
    if (t.status === "CONFIRMED") row.querySelector("form")?.remove();
  }
}

export function start(live) {
  live.subscribe(CREDIT_BALANCE_UPDATED, {}, ({ creditBalanceUpdated }) => {
    showBalance(creditBalanceUpdated);
    refreshStatuses().catch((error) => console.warn(error));
  });
}
