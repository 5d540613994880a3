"""The mail sink's web page: the mails newest first, click one to read it; new mails appear as they
arrive (Server-Sent Events from ``/api/events``, no polling). Everything shown is inserted as text;
an HTML body is shown in a sandboxed frame (no scripts)."""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>junction mail sink</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { margin: 0; font: 14px system-ui, sans-serif; color: #1d2330; display: flex; flex-direction: column;
         height: 100vh; }
  header { display: flex; align-items: center; gap: 1rem; padding: .6rem 1rem; background: #24324a; color: #fff; }
  header h1 { font-size: 1rem; margin: 0; flex: 1; }
  header button { background: #fff; border: 0; border-radius: 4px; padding: .3rem .7rem; cursor: pointer; }
  #state { font-size: .8rem; opacity: .8; }
  main { flex: 1; display: flex; min-height: 0; }
  #list { width: 40%; min-width: 18rem; overflow-y: auto; border-right: 1px solid #d8dce4; margin: 0;
          padding: 0; list-style: none; }
  #list li { padding: .55rem 1rem; border-bottom: 1px solid #eceef3; cursor: pointer; }
  #list li:hover { background: #f3f5f9; }
  #list li.open { background: #e3e9f6; }
  #list li.unread .subject { font-weight: 600; }
  .meta { display: flex; justify-content: space-between; font-size: .8rem; color: #5b6478; }
  .snippet { font-size: .8rem; color: #5b6478; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
  #reader { flex: 1; overflow-y: auto; padding: 1rem 1.5rem; }
  #reader dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: 0 0 1rem; }
  #reader dt { color: #5b6478; }
  #reader dd { margin: 0; }
  #reader pre { white-space: pre-wrap; font: 13px ui-monospace, monospace; background: #f6f7fa; padding: 1rem; }
  #reader iframe { width: 100%; height: 24rem; border: 1px solid #d8dce4; }
  .empty { color: #5b6478; padding: 1rem; }
</style>
</head>
<body>
<header><h1>junction mail sink</h1><span id="state">connecting...</span>
  <button id="clear" type="button">Delete all</button></header>
<main><ul id="list"></ul><section id="reader"><p class="empty">Select a mail to read it.</p></section></main>
<script>
const list = document.getElementById("list"), reader = document.getElementById("reader");
const state = document.getElementById("state");
let openId = null;

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}
const who = (a) => a ? (a.Name ? `${a.Name} <${a.Address}>` : a.Address) : "";
const when = (t) => new Date(t).toLocaleString();

function row(m) {
  const li = el("li", undefined, m.Read ? "" : "unread");
  li.dataset.id = m.ID;
  const meta = el("div", undefined, "meta");
  meta.append(el("span", who(m.From)), el("span", when(m.Created)));
  li.append(meta, el("div", m.Subject || "(no subject)", "subject"), el("div", m.Snippet, "snippet"));
  li.addEventListener("click", () => show(m.ID));
  return li;
}

function placeholder() {
  if (!list.children.length) list.append(el("li", "No mail yet.", "empty"));
}

let pushedDuringLoad = null;  // mails pushed while a load() was fetching: newer than what it fetched

async function load() {
  pushedDuringLoad = new Map();
  const page = await (await fetch("api/v1/messages?limit=200")).json();
  const fetched = new Set(page.messages.map((m) => m.ID));
  const late = [...pushedDuringLoad.values()].filter((m) => !fetched.has(m.ID)).reverse();
  pushedDuringLoad = null;
  list.replaceChildren(...late.map(row), ...page.messages.map(row));
  placeholder();
}

async function show(id) {
  const answer = await fetch(`api/v1/message/${encodeURIComponent(id)}`);
  if (!answer.ok) { reader.replaceChildren(el("p", "This mail is gone.", "empty")); return; }
  const m = await answer.json();
  openId = id;
  for (const li of list.children) {
    li.classList.toggle("open", li.dataset.id === id);
    if (li.dataset.id === id) li.classList.remove("unread");
  }
  const head = el("dl");
  for (const [name, value] of [["From", who(m.From)], ["To", m.To.map(who).join(", ")],
                               ["Cc", m.Cc.map(who).join(", ")], ["Subject", m.Subject],
                               ["Received", when(m.Created)], ["Message-ID", m.MessageID]]) {
    if (value) head.append(el("dt", name), el("dd", value));
  }
  const parts = [head, el("h3", "Text"), el("pre", m.Text || "(no text part)")];
  if (m.HTML) {
    const frame = el("iframe");
    frame.setAttribute("sandbox", "");
    frame.srcdoc = m.HTML;
    parts.push(el("h3", "HTML"), frame);
  }
  reader.replaceChildren(...parts);
}

document.getElementById("clear").addEventListener("click", async () => {
  await fetch("api/v1/messages", {method: "DELETE"});
});

const events = new EventSource("api/events");
events.onopen = () => { state.textContent = "live"; load(); };
events.onerror = () => { state.textContent = "reconnecting..."; };
events.addEventListener("new", (e) => {
  const m = JSON.parse(e.data);
  pushedDuringLoad?.set(m.ID, m);  // else the list the load() brings back would drop it
  if ([...list.children].some((li) => li.dataset.id === m.ID)) return;  // already listed by a load() in flight
  list.querySelector(".empty")?.remove();
  list.prepend(row(m));
});
events.addEventListener("deleted", () => {
  load();
  if (openId) show(openId);
});
</script>
</body>
</html>
"""
