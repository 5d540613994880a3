// The gateway's GraphQL API from the browser: queries and mutations as same-origin JSON POSTs (the
// gateway refuses other content types, which is its CSRF defence), and subscriptions over one
// WebSocket speaking graphql-transport-ws. The server pushes; nothing here polls.

export const ENDPOINT = "/graphql";

/** An error the API answered with: its message (shown to the user as is) and extensions.code. */
export class ApiError extends Error {
  constructor(message, code = null) {
    super(message);
    this.name = "ApiError";
    this.code = code;
  }
}

/** Run a query or mutation; resolve to `data`, reject with the first API error. */
export async function request(query, variables = {}) {
  let response;
  try {
    response = await fetch(ENDPOINT, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new ApiError("The service cannot be reached. Check your connection and try again.");
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`The service answered HTTP ${response.status}.`);
  }
  const error = body.errors && body.errors[0];
  if (error) throw new ApiError(error.message, error.extensions?.code ?? null);
  if (!response.ok) throw new ApiError(`The service answered HTTP ${response.status}.`);
  return body.data;
}

/**
 * A graphql-transport-ws client: one socket per page, opened on the first subscription, reopened
 * with a growing delay when it drops; open subscriptions are sent again after each reconnect.
 * `onState` hears "connecting" | "live" | "offline" (the page shows it).
 */
export class LiveClient {
  constructor({ url = null, onState = () => {} } = {}) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    this.url = url ?? `${scheme}//${location.host}${ENDPOINT}`;
    this.onState = onState;
    this.subscriptions = new Map(); // id -> {query, variables, onData, onError}
    this.nextId = 1;
    this.socket = null;
    this.acknowledged = false;
    this.retryDelay = 500;
    this.timer = null;
    this.closed = false;
    addEventListener("pagehide", () => this.close());
  }

  /** Subscribe; `onData(data)` is called on each push. Returns a function that unsubscribes. */
  subscribe(query, variables, onData, onError = (error) => console.warn(error)) {
    const id = String(this.nextId++);
    this.subscriptions.set(id, { query, variables, onData, onError });
    if (this.socket === null) this.connect();
    else if (this.acknowledged) this.sendSubscribe(id);
    return () => {
      if (this.subscriptions.delete(id) && this.acknowledged) this.send({ id, type: "complete" });
    };
  }

  connect() {
    clearTimeout(this.timer);
    this.acknowledged = false;
    this.onState("connecting");
    const socket = new WebSocket(this.url, "graphql-transport-ws");
    this.socket = socket;
    socket.addEventListener("open", () => this.send({ type: "connection_init", payload: {} }));
    socket.addEventListener("message", (event) => this.receive(event.data));
    socket.addEventListener("close", () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.acknowledged = false;
      if (this.closed) return;
      this.onState("offline");
      // Reconnect to a server that went away (restart, network); not a poll: one socket at a time.
      this.timer = setTimeout(() => this.connect(), this.retryDelay);
      this.retryDelay = Math.min(this.retryDelay * 2, 15000);
    });
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000);
  }

  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  sendSubscribe(id) {
    const { query, variables } = this.subscriptions.get(id);
    this.send({ id, type: "subscribe", payload: { query, variables } });
  }

  receive(raw) {
    let message;
    try {
      message = JSON.parse(raw);
    } catch {
      return;
    }
    const subscription = message.id ? this.subscriptions.get(message.id) : null;
    switch (message.type) {
      case "connection_ack":
        this.acknowledged = true;
        this.retryDelay = 500;
        this.onState("live");
        for (const id of this.subscriptions.keys()) this.sendSubscribe(id);
        break;
      case "ping":
        this.send({ type: "pong" });
        break;
      case "next":
        if (!subscription) break;
        if (message.payload?.errors?.length) subscription.onError(new ApiError(message.payload.errors[0].message));
        if (message.payload?.data) subscription.onData(message.payload.data);
        break;
      case "error":
        if (subscription) {
          const first = Array.isArray(message.payload) ? message.payload[0] : message.payload;
          subscription.onError(new ApiError(first?.message ?? "subscription refused", first?.extensions?.code));
          this.subscriptions.delete(message.id);
        }
        break;
      case "complete":
        this.subscriptions.delete(message.id);
        break;
    }
  }
}
