// The subscription documents (fields of the gateway's Subscription type) and shared handlers.

import { euros } from "./map.js";

const VEHICLE = "id type position { x y } battery available status target { x y }";

export const VEHICLE_UPDATED = `subscription VehicleUpdated { vehicleUpdated { id vehicle { ${VEHICLE} } } }`;
export const ADMIN_VEHICLE_UPDATED =
  `subscription VehicleUpdated { vehicleUpdated { id vehicle { ${VEHICLE} activeRental { id customerId cost } } } }`;
export const CREDIT_BALANCE_UPDATED = "subscription CreditBalanceUpdated { creditBalanceUpdated }";
export const ACTIVE_RENTAL_UPDATED = "subscription ActiveRentalUpdated { activeRentalUpdated { id start end cost } }";
export const PAYMENT_UPDATED =
  "subscription PaymentUpdated { paymentUpdated { id customerId amount status deleted } }";
export const CUSTOMER_UPDATED = `subscription CustomerUpdated { customerUpdated {
  id name position { x y } creditBalance lastLogin activeRental { id vehicleId vehicleType start cost } } }`;

/** Show a balance (cents) in every element marked data-live="balance"; negative is red. */
export function showBalance(cents) {
  for (const element of document.querySelectorAll('[data-live="balance"]')) {
    element.textContent = euros(cents);
    element.classList.toggle("negative", cents < 0);
  }
}
