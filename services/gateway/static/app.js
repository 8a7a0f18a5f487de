// Ferroshop storefront: a hash router over the gateway's REST API. No framework, no build step.
import { api, cart, money, session, ApiProblem } from "./api.js";

const main = document.getElementById("main");
const flash = document.getElementById("flash");

// ---- rendering helpers -------------------------------------------------------------------------

class Raw { constructor(text) { this.text = text; } }
const raw = (text) => new Raw(text);
const escape = (value) => String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

/** A template whose interpolations are escaped, unless they are `raw` or arrays of templates. */
function html(strings, ...values) {
  let out = strings[0];
  values.forEach((value, i) => {
    if (value instanceof Raw) out += value.text;
    else if (Array.isArray(value)) out += value.map((v) => (v instanceof Raw ? v.text : escape(v))).join("");
    else out += escape(value);
    out += strings[i + 1];
  });
  return raw(out);
}

function render(view) {
  main.innerHTML = view.text;
  paintSwatches(main);
}

// The Content-Security-Policy allows no inline style attributes, so a swatch's hue is set through
// the CSSOM (which the policy allows) after the markup is in place.
function paintSwatches(root) {
  root.querySelectorAll(".swatch[data-hue]").forEach((el) => el.style.setProperty("--hue", el.dataset.hue));
}

/** A message in the flash area; `carry` keeps it across the navigation that follows. */
function notify(message, kind = "info", carry = false) {
  flash.innerHTML = html`<div class="flash flash-${kind}" data-testid="flash-${kind}">${message}</div>`.text;
  flash.dataset.carry = carry ? "1" : "";
}

const STATUS_LABELS = { PENDING: "Processing", CONFIRMED: "Confirmed", CANCELLED: "Cancelled" };
const badge = (status) => html`<span class="status status-${status.toLowerCase()}" data-testid="order-status">${status}</span>`;
const when = (at) => (at ? new Date(at).toLocaleString() : "");
const shortId = (id) => id.slice(-8);

// A product tile's "photo": a colour and initials derived from the SKU, so the grid looks
// like a shop without shipping images.
function swatch(sku, name) {
  let hash = 0;
  for (const c of sku) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
  const hue = hash % 360;
  const initials = name.split(/\s+/).filter(Boolean).slice(0, 2).map((w) => w[0].toUpperCase()).join("");
  return html`<div class="swatch" data-hue="${hue}" aria-hidden="true"><span>${initials}</span></div>`;
}

function problemView(error) {
  const detail = error instanceof ApiProblem ? error.message : String(error);
  return html`<section class="panel empty" data-testid="error"><h1>Something went wrong</h1><p>${detail}</p><a class="btn" href="#/">Back to the shop</a></section>`;
}

// ---- header ------------------------------------------------------------------------------------

function refreshHeader() {
  document.getElementById("cart-count").textContent = cart.count();
  const slot = document.getElementById("account-slot");
  const s = session.get();
  if (s && session.token()) {
    slot.innerHTML = html`<span class="hello" data-testid="signed-in-as">${s.user?.display_name || s.user?.email || "Signed in"}</span>
      <button type="button" class="linkish" data-testid="sign-out" id="sign-out">Sign out</button>`.text;
    document.getElementById("sign-out").addEventListener("click", () => {
      session.clear();
      refreshHeader();
      notify("You are signed out.", "info", true);
      location.hash = "#/";
    });
  } else {
    slot.innerHTML = html`<a href="#/login" data-testid="nav-login">Sign in</a>`.text;
  }
}
window.addEventListener("cart-changed", refreshHeader);

document.querySelector(".search").addEventListener("submit", (event) => {
  event.preventDefault();
  const q = document.getElementById("search-input").value.trim();
  location.hash = q ? `#/?q=${encodeURIComponent(q)}` : "#/";
});

// ---- views -------------------------------------------------------------------------------------

function productCard(p) {
  const soldOut = p.available <= 0;
  return html`<li class="card" data-testid="product-card" data-sku="${p.sku}">
    <a class="card-link" href="#/product/${encodeURIComponent(p.sku)}" data-testid="product-link">
      ${swatch(p.sku, p.name)}
      <h2 class="card-title">${p.name}</h2>
    </a>
    <p class="card-desc">${p.description}</p>
    <div class="card-foot">
      <span class="price" data-testid="product-price">${money(p.price)}</span>
      ${soldOut ? html`<span class="stock out">Sold out</span>` : html`<button type="button" class="btn btn-small" data-add="${p.sku}" data-testid="add-to-cart">Add to cart</button>`}
    </div>
  </li>`;
}

async function catalogView(params) {
  const q = params.get("q") || "";
  document.getElementById("search-input").value = q;
  render(html`<section class="hero" ${q ? raw('hidden') : raw("")}>
      <div><h1>Good things, honestly priced.</h1><p>Browse the catalog, check out with a test card and watch the checkout saga run live.</p></div>
    </section>
    <div class="section-head"><h1 class="page-title">${q ? `Results for “${q}”` : "All products"}</h1><span id="stale-note"></span></div>
    <ul class="grid" id="grid" data-testid="product-grid" aria-busy="true"></ul>
    <div class="center"><button type="button" class="btn btn-ghost" id="more" data-testid="load-more" hidden>Load more</button></div>`);
  const grid = document.getElementById("grid");
  const more = document.getElementById("more");
  const loaded = new Map();
  let next = null;
  async function load(token) {
    more.disabled = true;
    try {
      const { data, stale } = await api.products(q, token);
      data.products.forEach((p) => loaded.set(p.sku, p));
      grid.insertAdjacentHTML("beforeend", data.products.map((p) => productCard(p).text).join(""));
      paintSwatches(grid);
      if (stale) document.getElementById("stale-note").innerHTML = html`<span class="note" data-testid="stale-note">Showing a saved copy of the catalog; prices and stock may be out of date.</span>`.text;
      if (!grid.children.length) grid.outerHTML = html`<div class="panel empty" data-testid="no-results"><p>No products ${q ? `match “${q}”` : "yet"}.</p></div>`.text;
      next = data.products.length ? data.next_page_token || null : null;
      more.hidden = !next;
    } catch (error) {
      render(problemView(error));
    } finally {
      more.disabled = false;
      grid.setAttribute("aria-busy", "false");
    }
  }
  more.addEventListener("click", () => load(next));
  main.addEventListener("click", onAdd);
  function onAdd(event) {
    const sku = event.target.closest("[data-add]")?.dataset.add;
    if (!sku || !loaded.has(sku)) return;
    cart.add(loaded.get(sku));
    notify(`Added ${loaded.get(sku).name} to your cart.`, "success");
  }
  cleanup = () => main.removeEventListener("click", onAdd);
  await load(null);
}

async function productView(sku) {
  render(html`<p class="loading">Loading…</p>`);
  let product;
  try { ({ data: product } = await api.product(sku)); } catch (error) { return render(problemView(error)); }
  const soldOut = product.available <= 0;
  render(html`<nav class="crumbs" aria-label="Breadcrumb"><a href="#/">Catalog</a> / <span>${product.name}</span></nav>
    <article class="product" data-testid="product-page" data-sku="${product.sku}">
      ${swatch(product.sku, product.name)}
      <div class="product-info">
        <h1 data-testid="product-name">${product.name}</h1>
        <p class="sku">SKU ${product.sku}</p>
        <p class="price price-big" data-testid="product-price">${money(product.price)}</p>
        <p class="desc">${product.description}</p>
        <p class="stock ${soldOut ? "out" : "in"}" data-testid="product-stock">${soldOut ? "Sold out" : `${product.available} in stock`}</p>
        <form id="add-form" class="add-form">
          <label for="qty">Quantity</label>
          <input id="qty" name="qty" type="number" min="1" max="${Math.max(1, Math.min(product.available, 99))}" value="1" data-testid="quantity" ${soldOut ? raw("disabled") : raw("")}>
          <button type="submit" class="btn" data-testid="add-to-cart" ${soldOut ? raw("disabled") : raw("")}>Add to cart</button>
        </form>
      </div>
    </article>`);
  document.getElementById("add-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const quantity = Math.max(1, parseInt(document.getElementById("qty").value, 10) || 1);
    cart.add(product, quantity);
    notify(`Added ${quantity} × ${product.name} to your cart.`, "success");
  });
}

function cartView() {
  const lines = cart.lines();
  if (!lines.length) {
    return render(html`<h1 class="page-title">Your cart</h1><section class="panel empty" data-testid="cart-empty"><p>Your cart is empty.</p><a class="btn" href="#/">Start shopping</a></section>`);
  }
  render(html`<h1 class="page-title">Your cart</h1>
    <div class="two-col">
      <section class="panel">
        <table class="lines" data-testid="cart-lines">
          <thead><tr><th scope="col">Product</th><th scope="col">Price</th><th scope="col">Quantity</th><th scope="col" class="num">Total</th><th scope="col"><span class="visually-hidden">Remove</span></th></tr></thead>
          <tbody>${lines.map((l) => html`<tr data-testid="cart-line" data-sku="${l.sku}">
            <td><a href="#/product/${encodeURIComponent(l.sku)}">${l.name}</a><div class="sku">${l.sku}</div></td>
            <td>${money(l.price)}</td>
            <td><label class="visually-hidden" for="q-${l.sku}">Quantity of ${l.name}</label><input class="qty" id="q-${l.sku}" type="number" min="0" max="99" value="${l.quantity}" data-qty="${l.sku}" data-testid="cart-quantity"></td>
            <td class="num">${money({ ...l.price, amount_minor: l.price.amount_minor * l.quantity })}</td>
            <td><button type="button" class="linkish" data-remove="${l.sku}" data-testid="cart-remove">Remove</button></td>
          </tr>`)}</tbody>
        </table>
      </section>
      <aside class="panel summary">
        <h2>Summary</h2>
        <p class="row"><span>Items</span><span>${cart.count()}</span></p>
        <p class="row total"><span>Total</span><span data-testid="cart-total">${money(cart.total())}</span></p>
        <a class="btn btn-block" href="#/checkout" data-testid="go-to-checkout">Checkout</a>
      </aside>
    </div>`);
  main.querySelectorAll("[data-qty]").forEach((input) => input.addEventListener("change", () => {
    cart.setQuantity(input.dataset.qty, Math.max(0, Math.min(99, parseInt(input.value, 10) || 0)));
    cartView();
  }));
  main.querySelectorAll("[data-remove]").forEach((button) => button.addEventListener("click", () => {
    cart.setQuantity(button.dataset.remove, 0);
    cartView();
  }));
}

function authView(mode) {
  const registering = mode === "register";
  const next = new URLSearchParams(location.hash.split("?")[1] || "").get("next") || "#/";
  render(html`<section class="panel narrow">
    <h1>${registering ? "Create your account" : "Sign in"}</h1>
    <form id="auth-form" novalidate data-testid="${registering ? "register-form" : "login-form"}">
      ${registering ? html`<label for="display-name">Name <span class="hint">(optional)</span></label><input id="display-name" name="display_name" autocomplete="name" data-testid="display-name">` : ""}
      <label for="email">Email</label>
      <input id="email" name="email" type="email" autocomplete="email" required data-testid="email">
      <label for="password">Password</label>
      <input id="password" name="password" type="password" autocomplete="${registering ? "new-password" : "current-password"}" required minlength="${registering ? 8 : 1}" data-testid="password">
      ${registering ? html`<p class="hint">At least 8 characters.</p>` : ""}
      <p class="form-error" id="form-error" role="alert" data-testid="form-error"></p>
      <button type="submit" class="btn btn-block" data-testid="${registering ? "register-submit" : "login-submit"}">${registering ? "Create account" : "Sign in"}</button>
    </form>
    <p class="alt">${registering ? html`Already have an account? <a href="#/login?next=${encodeURIComponent(next)}">Sign in</a>` : html`New here? <a href="#/register?next=${encodeURIComponent(next)}" data-testid="go-register">Create an account</a>`}</p>
  </section>`);
  const form = document.getElementById("auth-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    const error = document.getElementById("form-error");
    error.textContent = "";
    button.disabled = true;
    const email = form.email.value.trim();
    const password = form.password.value;
    try {
      if (registering) await api.register(email, password, form.display_name.value.trim());
      await api.login(email, password);
      refreshHeader();
      notify(registering ? "Welcome to Ferroshop! Your account is ready." : "Welcome back.", "success", true);
      location.hash = next;
    } catch (problem) {
      error.textContent = problem.field ? `${problem.field}: ${problem.message}` : problem.message;
      button.disabled = false;
    }
  });
}

const CARDS = [
  { token: "tok_visa_approve", label: "Approve", hint: "Visa ending 4242 — the payment is authorized" },
  { token: "tok_visa_decline", label: "Decline", hint: "Visa ending 0002 — the bank declines" },
  { token: "tok_insufficient_funds", label: "Insufficient funds", hint: "Visa ending 9995 — not enough money" },
];

// One idempotency key per checkout attempt: kept (with the cart it was made for) until the
// order is placed, so a retry after a lost response cannot place the order twice.
const ATTEMPT_KEY = "ferroshop.checkout-attempt";
function attemptKey(fingerprint) {
  let attempt = null;
  try { attempt = JSON.parse(sessionStorage.getItem(ATTEMPT_KEY)); } catch { /* a fresh one below */ }
  if (!attempt || attempt.fingerprint !== fingerprint) {
    attempt = { key: crypto.randomUUID(), fingerprint };
    sessionStorage.setItem(ATTEMPT_KEY, JSON.stringify(attempt));
  }
  return attempt.key;
}

function checkoutView() {
  if (!session.token()) {
    notify("Please sign in to check out.", "info", true);
    location.hash = `#/login?next=${encodeURIComponent("#/checkout")}`;
    return;
  }
  const lines = cart.lines();
  if (!lines.length) { location.hash = "#/cart"; return; }
  render(html`<h1 class="page-title">Checkout</h1>
    <div class="two-col">
      <form class="panel" id="checkout-form" data-testid="checkout-form">
        <fieldset class="cards">
          <legend>Payment — choose a test card</legend>
          ${CARDS.map((c, i) => html`<label class="card-choice">
            <input type="radio" name="card" value="${c.token}" ${i === 0 ? raw("checked") : raw("")} data-testid="card-${c.token}">
            <span><strong>${c.label} (${c.token})</strong><small>${c.hint}</small></span>
          </label>`)}
        </fieldset>
        <p class="form-error" id="form-error" role="alert" data-testid="form-error"></p>
        <button type="submit" class="btn btn-block" data-testid="place-order">Place order · ${money(cart.total())}</button>
        <p class="hint">Checkout is a saga: stock is reserved, then the card is authorized. You will see each step on the next page.</p>
      </form>
      <aside class="panel summary">
        <h2>Order summary</h2>
        ${lines.map((l) => html`<p class="row"><span>${l.quantity} × ${l.name}</span><span>${money({ ...l.price, amount_minor: l.price.amount_minor * l.quantity })}</span></p>`)}
        <p class="row total"><span>Total</span><span data-testid="checkout-total">${money(cart.total())}</span></p>
      </aside>
    </div>`);
  const form = document.getElementById("checkout-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    const error = document.getElementById("form-error");
    const card = form.card.value;
    const orderLines = cart.lines().map((l) => ({ sku: l.sku, quantity: l.quantity }));
    const key = attemptKey(JSON.stringify([orderLines, card]));
    button.disabled = true;
    error.textContent = "";
    try {
      const { data: order } = await api.placeOrder(orderLines, card, key);
      sessionStorage.removeItem(ATTEMPT_KEY);
      cart.clear();
      location.hash = `#/orders/${order.id}`;
    } catch (problem) {
      error.textContent = problem.transient
        ? `${problem.message} Press “Place order” again to retry — the same request key is reused, so you will not be charged twice.`
        : problem.message;
      button.disabled = false;
    }
  });
}

async function ordersView() {
  if (!session.token()) { location.hash = `#/login?next=${encodeURIComponent("#/orders")}`; return; }
  render(html`<h1 class="page-title">My orders</h1>
    <p class="note" data-testid="eventual-note"><strong>Heads-up:</strong> this list comes from a read model that is updated from events, so it is <em>eventually consistent</em> — a brand-new order or status change can take a moment to appear here. The order page itself is always current.</p>
    <div id="orders" aria-busy="true"><p class="loading">Loading…</p></div>
    <div class="center"><button type="button" class="btn btn-ghost" id="refresh" data-testid="refresh-orders">Refresh</button></div>`);
  document.getElementById("refresh").addEventListener("click", () => ordersView());
  const target = document.getElementById("orders");
  try {
    const { data } = await api.orders();
    target.innerHTML = (data.orders.length
      ? html`<table class="lines panel" data-testid="orders-table"><thead><tr><th scope="col">Order</th><th scope="col">Placed</th><th scope="col">Items</th><th scope="col">Status</th><th scope="col" class="num">Total</th></tr></thead>
        <tbody>${data.orders.map((o) => html`<tr data-testid="order-row" data-order-id="${o.id}">
          <td><a href="#/orders/${o.id}">#${shortId(o.id)}</a></td><td>${when(o.created_at)}</td><td>${o.item_count}</td><td>${badge(o.status)}</td><td class="num">${money(o.total)}</td></tr>`)}</tbody></table>`
      : html`<section class="panel empty" data-testid="orders-empty"><p>No orders yet${" "}— or your latest one is still on its way to this list.</p><a class="btn" href="#/">Shop now</a></section>`).text;
  } catch (error) {
    target.innerHTML = problemView(error).text;
  } finally {
    target.setAttribute("aria-busy", "false");
  }
}

const STEP_LABELS = {
  place_order: "Order placed",
  reserve_stock: "Reserve stock",
  authorize_payment: "Authorize payment",
  commit_stock: "Commit stock",
  void_payment: "Void payment (compensation)",
  release_stock: "Release stock (compensation)",
  confirm: "Confirm order",
  cancel: "Cancel order",
  capture_payment: "Capture payment",
  refund_payment: "Refund payment",
  restock: "Restock",
};
const stepLabel = (step) => STEP_LABELS[step] || step.charAt(0).toUpperCase() + step.slice(1).replaceAll("_", " ");

function orderBody(order) {
  const reason = order.cancellation_reason ? html`<p class="reason" data-testid="cancellation-reason">Reason: ${order.cancellation_reason.replaceAll("_", " ")}</p>` : "";
  return html`<div class="order-head">
      <div><h1 class="page-title">Order #${shortId(order.id)}</h1><p class="sku" data-testid="order-id">${order.id}</p></div>
      <div class="order-state">${badge(order.status)}<span class="hint">${STATUS_LABELS[order.status] || ""}</span></div>
    </div>
    ${reason}
    <div class="two-col">
      <section class="panel">
        <h2>Checkout saga</h2>
        <ol class="timeline" data-testid="timeline" aria-live="polite" aria-label="Checkout progress">
          ${order.timeline.map((s) => html`<li class="step step-${s.outcome}" data-testid="timeline-step" data-step="${s.step}" data-outcome="${s.outcome}" data-sequence="${s.sequence}">
            <span class="dot" aria-hidden="true"></span>
            <div><strong>${stepLabel(s.step)}</strong> <span class="outcome">${s.outcome}</span>
            ${s.detail ? html`<div class="detail">${s.detail}</div>` : ""}<time>${when(s.at)}</time></div></li>`)}
          ${!order.settled ? html`<li class="step step-running" data-testid="timeline-waiting"><span class="dot" aria-hidden="true"></span><div><strong>Working…</strong> <span class="outcome">in progress</span></div></li>` : ""}
        </ol>
        <p class="hint">Payment: ${order.payment_status || "—"} · Stock: ${order.stock_status || "—"}</p>
      </section>
      <aside class="panel summary">
        <h2>Items</h2>
        ${order.lines.map((l) => html`<p class="row"><span>${l.quantity} × ${l.name || l.sku}</span><span>${money(l.line_total)}</span></p>`)}
        <p class="row total"><span>Total</span><span data-testid="order-total">${money(order.total)}</span></p>
        <p class="hint">Placed ${when(order.created_at)}</p>
      </aside>
    </div>`;
}

/** The order page. The order is read once, then kept current by its event stream: each `step`
 *  event is one new timeline step (with the order's statuses after it), appended as it arrives,
 *  until the step that settles the order. EventSource reconnects by itself after a dropped
 *  connection, resuming after the last step it saw (the Last-Event-ID header); when it gives up
 *  (the one-minute ticket expired, the gateway refused), the page opens a new stream with a new
 *  ticket from the last step it shows, and falls back to polling only after repeated failures. */
async function orderView(id) {
  render(html`<div id="order" data-testid="order-page" data-live="connecting"><p class="loading">Loading order…</p></div><p class="hint" id="live-state" data-testid="live-state"></p>`);
  const container = document.getElementById("order");
  const liveState = document.getElementById("live-state");
  let stopped = false;
  let timer = null;
  let source = null;
  let order = null;
  let reopens = 0;
  const lastSequence = () => order.timeline.reduce((last, s) => Math.max(last, s.sequence || 0), 0);
  const show = (next) => {
    order = next;
    container.innerHTML = orderBody(order).text;
    container.dataset.status = order.status;
    container.dataset.settled = String(Boolean(order.settled));
  };
  const close = () => { if (source) source.close(); source = null; };
  const settledNote = () => { close(); liveState.textContent = "Checkout finished."; container.dataset.live = "done"; };

  async function poll() {
    if (stopped) return;
    try {
      const { data } = await api.order(id);
      show(data);
      if (data.settled) return settledNote();
    } catch (error) {
      if (!(error instanceof ApiProblem) || !error.transient) { container.innerHTML = problemView(error).text; return; }
    }
    timer = setTimeout(poll, 1000);
  }
  function fallBackToPolling() {
    close();
    if (stopped || container.dataset.live === "done") return;
    container.dataset.live = "polling";
    liveState.textContent = "Live updates unavailable; checking every second.";
    poll();
  }

  /** One step event: appended unless already shown (a step is never shown twice). */
  function onStep(event) {
    const step = JSON.parse(event.data);
    reopens = 0;
    if (step.sequence <= lastSequence()) return;
    const { sequence, step: name, outcome, detail, at } = step;
    show({
      ...order,
      status: step.status,
      cancellation_reason: step.cancellation_reason,
      payment_status: step.payment_status,
      stock_status: step.stock_status,
      settled: step.settled,
      timeline: [...order.timeline, { sequence, step: name, outcome, detail, at }],
    });
    if (step.settled) settledNote();
  }

  async function open() {
    if (stopped || container.dataset.live === "done") return;
    let url;
    try {
      url = await api.eventsUrl(id, lastSequence());
    } catch {
      return fallBackToPolling();
    }
    if (stopped) return;
    source = new EventSource(url);
    container.dataset.live = "streaming";
    liveState.textContent = "Live: this page updates as checkout progresses.";
    source.addEventListener("step", onStep);
    source.addEventListener("error", async () => {
      if (!source || stopped) return;
      if (source.readyState === EventSource.CONNECTING) {
        // The browser reconnects by itself, resuming after the last step (Last-Event-ID).
        liveState.textContent = "Reconnecting…";
        return;
      }
      // The browser gave up: an expired ticket, a refusal, or 204 (nothing more will come).
      close();
      reopens += 1;
      if (reopens > 3) return fallBackToPolling();
      try {
        const { data } = await api.order(id);
        show(data);
        if (data.settled) return settledNote();
      } catch {
        return fallBackToPolling();
      }
      open();
    });
  }

  try {
    const { data } = await api.order(id);
    show(data);
    if (data.settled) settledNote();
  } catch (error) {
    return render(problemView(error));
  }
  cleanup = () => { stopped = true; clearTimeout(timer); close(); };
  if (container.dataset.live === "done") return;
  if (!("EventSource" in window)) return fallBackToPolling();
  open();
}

// ---- router ------------------------------------------------------------------------------------

let cleanup = () => {};

async function route() {
  cleanup();
  cleanup = () => {};
  const [path, query] = (location.hash.slice(1) || "/").split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  document.querySelectorAll(".nav a").forEach((a) => a.removeAttribute("aria-current"));
  const current = document.querySelector(`.nav a[href="#/${parts[0] || ""}"]`);
  if (current) current.setAttribute("aria-current", "page");
  // A message survives the navigation it announced (sign-in → next page), not the ones after.
  if (flash.dataset.carry) flash.dataset.carry = "";
  else flash.innerHTML = "";
  let title = "Ferroshop";
  try {
    switch (parts[0]) {
      case undefined: await catalogView(params); break;
      case "product": title = `${parts[1]} · Ferroshop`; await productView(parts[1]); break;
      case "cart": title = "Cart · Ferroshop"; cartView(); break;
      case "login": title = "Sign in · Ferroshop"; authView("login"); break;
      case "register": title = "Register · Ferroshop"; authView("register"); break;
      case "checkout": title = "Checkout · Ferroshop"; checkoutView(); break;
      case "orders":
        if (parts[1]) { title = `Order ${shortId(parts[1])} · Ferroshop`; await orderView(parts[1]); }
        else { title = "My orders · Ferroshop"; await ordersView(); }
        break;
      default:
        render(html`<section class="panel empty" data-testid="not-found"><h1>Page not found</h1><a class="btn" href="#/">Back to the shop</a></section>`);
    }
  } catch (error) {
    render(problemView(error));
  }
  document.title = title;
  refreshHeader();
}

window.addEventListener("hashchange", route);
route();
