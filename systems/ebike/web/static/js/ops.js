// The mutations the pages' forms send, by operation name (the form's data-op), and which field an
// error message belongs to: the message is shown next to that field, else next to the form's action.

const USER = "id username role";
const VEHICLE = "id type position { x y } battery available status target { x y }";

const ACCOUNT_ERRORS = [
  [/already exists/i, "username"],
  [/username/i, "username"],
  [/password/i, "password"],
];

export const OPERATIONS = {
  login: {
    query: `mutation Login($username: String!, $password: String!) {
      login(username: $username, password: $password) { ${USER} } }`,
    // "invalid username or password" and "validation failed" may be either field: next to the button.
  },
  registerCustomer: {
    query: `mutation RegisterCustomer($username: String!, $password: String!) {
      registerCustomer(username: $username, password: $password) { ${USER} } }`,
    errors: ACCOUNT_ERRORS,
  },
  registerAdmin: {
    query: `mutation RegisterAdmin($username: String!, $password: String!) {
      registerAdmin(username: $username, password: $password) { ${USER} } }`,
    errors: ACCOUNT_ERRORS,
  },
  logout: { query: "mutation Logout { logout }" },
  createPayment: {
    query: "mutation CreatePayment($amount: Int!) { createPayment(amount: $amount) { id amount status } }",
    errors: [[/validation|amount/i, "amount"]],
  },
  deletePayment: { query: "mutation DeletePayment($id: ID!) { deletePayment(id: $id) { id } }" },
  confirmPayment: { query: "mutation ConfirmPayment($id: ID!) { confirmPayment(id: $id) { id status } }" },
  rejectPayment: { query: "mutation RejectPayment($id: ID!) { rejectPayment(id: $id) { id status } }" },
  updateCustomerPosition: {
    query: "mutation UpdateCustomerPosition($position: Vec2dInput!) { updateCustomerPosition(position: $position) }",
  },
  startRental: { query: "mutation StartRental($vehicleId: ID!) { startRental(vehicleId: $vehicleId) { id start cost } }" },
  stopRental: { query: "mutation StopRental($id: ID!) { stopRental(id: $id) { id end cost } }" },
  requestABike: {
    query: `mutation RequestABike($position: Vec2dInput!) { requestABike(position: $position) { ${VEHICLE} } }`,
  },
  cancelABikeRequest: { query: "mutation CancelABikeRequest { cancelABikeRequest }" },
  createStation: {
    query: `mutation CreateStation($name: String!, $position: Vec2dInput!) {
      createStation(input: { name: $name, position: $position }) { id name position { x y } } }`,
    errors: [[/name|validation/i, "name"], [/position/i, "position"]],
  },
  deleteStation: { query: "mutation DeleteStation($id: ID!) { deleteStation(id: $id) { id } }" },
  createVehicle: {
    query: `mutation CreateVehicle($type: VehicleType!, $position: Vec2dInput!) {
      createVehicle(input: { type: $type, position: $position }) { ${VEHICLE} } }`,
    errors: [[/type|validation/i, "type"], [/position/i, "position"]],
  },
  deleteVehicle: { query: "mutation DeleteVehicle($id: ID!) { deleteVehicle(id: $id) { id } }" },
};

/** The field an error message of `op` belongs to, or "action". */
export function fieldOf(op, message) {
  for (const [pattern, field] of OPERATIONS[op]?.errors ?? []) {
    if (pattern.test(message)) return field;
  }
  return "action";
}
