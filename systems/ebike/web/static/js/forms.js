// Forms that send a GraphQL mutation instead of a native post: <form data-op="createPayment">.
// Inputs are named after the mutation's variables ("position.x" nests), data-kind converts them
// ("cents": euros typed by the user × 100, "float", "int"). An API error is shown, verbatim, in
// the <output data-error-for="..."> of the field it concerns (see ops.js), else next to the button.
// After success the form's data-then says what happens: "reload" (default), "go:/path", "none"
// (a page script listens for the "api:done" event), or "remove-row".

import { request } from "./graphql.js";
import { OPERATIONS, fieldOf } from "./ops.js";

function convert(element) {
  const raw = element.value.trim();
  switch (element.dataset.kind) {
    case "cents":
      return raw === "" ? null : Math.round(Number(raw) * 100);
    case "float":
      return raw === "" ? null : Number(raw);
    case "int":
      return raw === "" ? null : Number.parseInt(raw, 10);
    default:
      return element.value;
  }
}

/** The mutation's variables from the form's named controls. */
export function variablesOf(form) {
  const variables = {};
  for (const element of form.elements) {
    if (!element.name || element.disabled || element.type === "submit" || element.type === "button") continue;
    const path = element.name.split(".");
    let target = variables;
    for (const key of path.slice(0, -1)) target = target[key] ??= {};
    target[path.at(-1)] = convert(element);
  }
  return variables;
}

export function clearErrors(form) {
  for (const output of form.querySelectorAll("output.error")) output.textContent = "";
  for (const element of form.querySelectorAll("[aria-invalid]")) element.removeAttribute("aria-invalid");
}

/** Show `message` next to the field it concerns (or the form's action). */
export function showError(form, message, field = "action") {
  const output = form.querySelector(`output[data-error-for="${field}"]`)
    ?? form.querySelector('output[data-error-for="action"]');
  if (output) output.textContent = message;
  for (const element of form.elements) {
    if (field !== "action" && (element.name === field || element.name?.startsWith(`${field}.`))) {
      element.setAttribute("aria-invalid", "true");
    }
  }
}

async function submit(form) {
  const op = form.dataset.op;
  const operation = OPERATIONS[op];
  if (!operation) throw new Error(`no operation ${op}`);
  clearErrors(form);
  const buttons = [...form.querySelectorAll("button")];
  form.setAttribute("aria-busy", "true");
  for (const button of buttons) button.disabled = true;
  let navigating = false;
  try {
    const data = await request(operation.query, variablesOf(form));
    form.dispatchEvent(new CustomEvent("api:done", { bubbles: true, detail: { op, result: data[op] } }));
    navigating = after(form);
  } catch (error) {
    showError(form, error.message, fieldOf(op, error.message));
    form.dispatchEvent(new CustomEvent("api:error", { bubbles: true, detail: { op, error } }));
  } finally {
    form.removeAttribute("aria-busy");
    if (!navigating) for (const button of buttons) button.disabled = false;
  }
}

function after(form) {
  const then = form.dataset.then ?? "reload";
  if (then === "reload") {
    location.reload();
    return true;
  }
  if (then.startsWith("go:")) {
    location.assign(then.slice(3));
    return true;
  }
  if (then === "remove-row") form.closest("tr")?.remove();
  return false;
}

/** Handle every data-op form of the page, including those added later (one listener). */
export function enableForms(root = document) {
  root.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.op) return;
    event.preventDefault();
    if (form.getAttribute("aria-busy") === "true") return;
    submit(form);
  });
}

/** A one-button form acting on one id, as the templates' `action` macro renders it. */
export function actionForm(op, name, value, label, { style = "", then = "reload" } = {}) {
  const form = document.createElement("form");
  form.className = "inline";
  form.dataset.op = op;
  form.dataset.then = then;
  const input = Object.assign(document.createElement("input"), { type: "hidden", name, value });
  const button = Object.assign(document.createElement("button"), { type: "submit", textContent: label });
  if (style) button.className = style;
  const output = Object.assign(document.createElement("output"), { className: "error" });
  output.dataset.errorFor = "action";
  form.append(input, button, output);
  return form;
}
