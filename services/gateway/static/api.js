// The gateway's REST API (/api/v1): session, problem+json errors, and the cart in localStorage.

const TOKEN_KEY = "ferroshop.session";
const CART_KEY = "ferroshop.cart";

/** An RFC 9457 problem (or a network failure, status 0) as an Error. */
export class ApiProblem extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
    this.field = problem?.field;
  }
  /** Worth retrying with the same idempotency key. */
  get transient() {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

export const session = {
  get() {
    try { return JSON.parse(localStorage.getItem(TOKEN_KEY)) || null; } catch { return null; }
  },
  set(value) { localStorage.setItem(TOKEN_KEY, JSON.stringify(value)); },
  clear() { localStorage.removeItem(TOKEN_KEY); },
  token() {
    const s = this.get();
    if (!s) return null;
    if (s.expires_at && Date.now() > s.expires_at) { this.clear(); return null; }
    return s.access_token;
  },
};

export async function request(method, path, { body, headers = {}, auth = false } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const token = session.token();
  if (token) init.headers.Authorization = `Bearer ${token}`;
  else if (auth) throw new ApiProblem(401, { title: "Sign in required", detail: "Please sign in first." });
  let response;
  try {
    response = await fetch(`/api/v1${path}`, init);
  } catch (error) {
    throw new ApiProblem(0, { title: "Network error", detail: "The shop could not be reached. Check your connection and try again." });
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { detail: text }; }
  if (!response.ok) {
    if (response.status === 401 && token) session.clear();
    throw new ApiProblem(response.status, data);
  }
  return { data, stale: response.headers.get("x-ferroshop-stale") === "true" };
}

export const api = {
  products: (q, pageToken) => {
    const params = new URLSearchParams({ page_size: "12" });
    if (q) params.set("q", q);
    if (pageToken) params.set("page_token", pageToken);
    return request("GET", `/products?${params}`);
  },
  product: (sku) => request("GET", `/products/${encodeURIComponent(sku)}`),
  register: (email, password, display_name) =>
    request("POST", "/auth/register", { body: { email, password, display_name: display_name || null } }),
  login: async (email, password) => {
    const { data } = await request("POST", "/auth/login", { body: { email, password } });
    session.set({ access_token: data.access_token, user: data.user, expires_at: Date.now() + data.expires_in * 1000 });
    return data;
  },
  placeOrder: (lines, paymentMethod, idempotencyKey) =>
    request("POST", "/orders", {
      auth: true,
      headers: { "Idempotency-Key": idempotencyKey },
      body: { lines, payment_method: paymentMethod },
    }),
  orders: (pageToken) => request("GET", `/orders?page_size=20${pageToken ? `&page_token=${encodeURIComponent(pageToken)}` : ""}`, { auth: true }),
  order: (id) => request("GET", `/orders/${encodeURIComponent(id)}`, { auth: true }),
  cancel: (id) => request("POST", `/orders/${encodeURIComponent(id)}/cancel`, { auth: true, body: {} }),
  /** The order's event stream URL, with a one-minute stream ticket: EventSource cannot send the
   *  bearer token as a header, and the token itself never goes into a URL. `after` is the last
   *  step sequence already shown: the stream starts with the step after it. (EventSource's own
   *  reconnects send the last id as the Last-Event-ID header instead.) */
  eventsUrl: async (id, after) => {
    const path = `/orders/${encodeURIComponent(id)}`;
    const { data } = await request("POST", `${path}/stream-tickets`, { auth: true });
    return `/api/v1${path}/events?ticket=${encodeURIComponent(data.ticket)}&last_event_id=${after}`;
  },
};

/** The cart: [{ sku, name, price: { amount_minor, currency }, quantity }] in localStorage. */
export const cart = {
  lines() {
    try { return JSON.parse(localStorage.getItem(CART_KEY)) || []; } catch { return []; }
  },
  save(lines) {
    localStorage.setItem(CART_KEY, JSON.stringify(lines));
    window.dispatchEvent(new Event("cart-changed"));
  },
  add(product, quantity = 1) {
    const lines = this.lines();
    const line = lines.find((l) => l.sku === product.sku);
    if (line) line.quantity += quantity;
    else lines.push({ sku: product.sku, name: product.name, price: product.price, quantity });
    this.save(lines);
  },
  setQuantity(sku, quantity) {
    this.save(this.lines().map((l) => (l.sku === sku ? { ...l, quantity } : l)).filter((l) => l.quantity > 0));
  },
  clear() { this.save([]); },
  count() { return this.lines().reduce((n, l) => n + l.quantity, 0); },
  total() {
    const lines = this.lines();
    return { amount_minor: lines.reduce((s, l) => s + l.price.amount_minor * l.quantity, 0), currency: lines[0]?.price.currency || "EUR" };
  },
};

/** Money from integer minor units, formatted for the reader's locale. */
export function money({ amount_minor, currency }) {
  const format = new Intl.NumberFormat(undefined, { style: "currency", currency: currency || "EUR" });
  const digits = format.resolvedOptions().maximumFractionDigits;
  return format.format(amount_minor / 10 ** digits);
}
