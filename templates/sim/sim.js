// The browser simulator: each phone is one person in WeChat. What they do
// goes to POST /sim/say, which sends it to /wechat signed as WeChat would;
// what the account sends them afterwards (customer-service, template and
// mass messages) is read from /sandbox/outbox every second.
//
// The people are kept in localStorage under the sandbox's instance (a new
// sandbox database starts with nobody); each phone's chat is kept in
// sessionStorage, so a reload shows it again and closing the tab forgets it.
"use strict";

const phones = document.getElementById("phones");
let setup = { account: "", menu: [], instance: "" };
let demo = { doctors: [] };
let people = [];

function storeKey() { return "jiayi.sim." + setup.instance; }
function load() {
  try { return JSON.parse(localStorage.getItem(storeKey())) || []; } catch { return []; }
}
function save() {
  localStorage.setItem(storeKey(), JSON.stringify(people.map(p => ({ openid: p.openid, label: p.label, kind: p.kind, doctor: p.doctor }))));
}
function chatKey(p) { return storeKey() + ".chat." + p.openid; }
function loadChat(p) {
  try { return JSON.parse(sessionStorage.getItem(chatKey(p))) || { log: [], seen: 0 }; } catch { return { log: [], seen: 0 }; }
}
function saveChat(p) {
  p.log = p.log.slice(-300);
  try { sessionStorage.setItem(chatKey(p), JSON.stringify({ log: p.log, seen: p.seen })); } catch { /* full: the chat is not kept */ }
}

// api calls the server; an error carries the HTTP status.
async function api(path, body) {
  const init = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const resp = await fetch(path, init);
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const e = new Error(data.error || resp.status + " " + resp.statusText);
    e.status = resp.status;
    throw e;
  }
  return data;
}

// Times are shown as the person's phone would: Beijing time, sandbox clock.
const dayFmt = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", year: "numeric", month: "long", day: "numeric", weekday: "short" });
const minuteFmt = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false });
const hm = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit", hour12: false });
function when(at) { return at ? minuteFmt.format(new Date(at)) : ""; }

function randomID() {
  const a = new Uint8Array(8);
  crypto.getRandomValues(a);
  return Array.from(a, b => b.toString(36).padStart(2, "0")).join("").slice(0, 12);
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// --- one phone ---------------------------------------------------------

function mount(p) {
  const node = document.getElementById("phone").content.firstElementChild.cloneNode(true);
  node.dataset.openid = p.openid;
  node.querySelector(".who").textContent = p.label;
  node.querySelector(".who").title = "openid: " + p.openid; // for /sandbox/outbox?to=OPENID
  node.querySelector(".account").textContent = setup.account;
  p.node = node;
  p.msgs = node.querySelector(".msgs");
  Object.assign(p, loadChat(p));
  p.queue = Promise.resolve();
  p.voice = false;
  const form = node.querySelector(".input");
  const menu = node.querySelector(".menu");
  const input = form.querySelector("input");
  form.addEventListener("submit", ev => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    send(p, p.voice ? "voice" : "text", text);
  });
  form.querySelector(".voice").addEventListener("click", () => {
    p.voice = !p.voice;
    form.classList.toggle("speaking", p.voice);
    input.placeholder = p.voice ? "说的话（按发送，作为语音发出）" : "输入消息";
    input.focus();
  });
  form.querySelector(".to-menu").addEventListener("click", () => { form.hidden = true; menu.hidden = false; });
  menu.querySelector(".to-keyboard").addEventListener("click", () => { menu.hidden = true; form.hidden = false; closeSubs(node); });
  drawMenu(p, menu.querySelector(".buttons"));
  node.querySelector(".remove").addEventListener("click", () => {
    if (!confirm("移除“" + p.label + "”？这部手机和它的聊天记录会从模拟器里去掉。")) return;
    people = people.filter(q => q !== p);
    node.remove();
    sessionStorage.removeItem(chatKey(p));
    save();
  });
  phones.appendChild(node);
  for (const entry of p.log) draw(p, entry);
}

function closeSubs(node) { node.querySelectorAll(".sub").forEach(s => s.remove()); }

// drawMenu draws the account's custom menu (templates/menu.yaml): a tap on
// a button with sub-buttons opens them, a tap on a key sends a CLICK event.
function drawMenu(p, box) {
  for (const top of setup.menu) {
    const b = el("button", "top", top.name);
    b.type = "button";
    b.addEventListener("click", () => {
      const open = b.querySelector(".sub");
      closeSubs(p.node);
      if (!top.sub) { click(p, top); return; }
      if (open) return;
      const sub = el("div", "sub");
      for (const item of top.sub) {
        const s = el("button", "", item.name);
        s.type = "button";
        s.addEventListener("click", ev => { ev.stopPropagation(); closeSubs(p.node); click(p, item); });
        sub.appendChild(s);
      }
      b.appendChild(sub);
    });
    box.appendChild(b);
  }
}

function click(p, item) {
  send(p, "click", item.key, "点了菜单“" + item.name + "”");
}

// later runs f after what the phone is doing now; a failure is shown and
// never stops the phone's later work.
function later(p, f) {
  p.queue = p.queue.then(f).catch(e => add(p, { t: "sys", text: "出错了：" + e.message, error: true }));
  return p.queue;
}

// send queues one action, so a person's messages reach the bot in order,
// and pushes they set off are shown after the reply. note, if given, is
// shown instead of the message (a menu tap shows no bubble in WeChat).
function send(p, kind, text, note) {
  return later(p, async () => {
    let mine;
    if (kind === "follow") add(p, { t: "sys", text: "关注了公众号" });
    else if (note) add(p, { t: "sys", text: note });
    else mine = add(p, { t: "me", kind, text });
    try {
      const r = await api("/sim/say", { openid: p.openid, kind, text });
      if (mine) stamp(p, mine, r.at);
      if (r.reply) add(p, { t: "bot", text: r.reply, at: r.at });
    } catch (e) {
      add(p, { t: "sys", text: "没有送达：" + e.message, error: true });
    }
  });
}

// add records an entry in the phone's chat and draws it.
function add(p, entry) {
  p.log.push(entry);
  draw(p, entry);
  saveChat(p);
  return entry;
}

function stamp(p, entry, at) {
  entry.at = at;
  const row = rowOf.get(entry);
  if (row) row.after(el("div", "at", when(at)));
  saveChat(p);
  scroll(p);
}

const rowOf = new WeakMap(); // an entry's row on the page

function scroll(p) { p.msgs.scrollTop = p.msgs.scrollHeight; }

// draw renders one entry: "me" and "bot" bubbles, a "card" as WeChat shows
// a template or mass message (title, time, words, and a template's link to
// its details), a "sys" line.
function draw(p, entry) {
  let node;
  switch (entry.t) {
    case "me": {
      node = el("div", "row me");
      node.appendChild(el("div", "avatar", p.kind === "doctor" ? "医" : "我"));
      const b = el("div", "bubble");
      if (entry.kind === "voice") {
        b.classList.add("spoken");
        b.appendChild(document.createTextNode(Math.max(1, Math.min(60, Math.round(entry.text.length / 3))) + "″"));
        b.appendChild(el("span", "heard", entry.text));
      } else {
        b.textContent = entry.text;
      }
      node.appendChild(b);
      break;
    }
    case "bot":
      node = el("div", "row bot");
      node.appendChild(el("div", "avatar", "家"));
      node.appendChild(el("div", "bubble", entry.text));
      break;
    case "card": {
      node = el("div", "card " + entry.kind);
      node.appendChild(el("div", "card-title", entry.title || { mass: "健康提示", "mass-preview": "群发预览（只发给你）" }[entry.kind] || "服务通知"));
      node.appendChild(el("div", "card-time", when(entry.at)));
      node.appendChild(el("div", "card-body", entry.text || ""));
      if (entry.url) {
        const a = el("a", "card-foot", "详情");
        a.href = entry.url;
        a.target = "_blank";
        a.rel = "noopener";
        node.appendChild(a);
      }
      break;
    }
    default:
      node = el("div", entry.error ? "sys error" : "sys", entry.text);
  }
  rowOf.set(entry, node);
  p.msgs.appendChild(node);
  if ((entry.t === "me" || entry.t === "bot") && entry.at) p.msgs.appendChild(el("div", "at", when(entry.at)));
  scroll(p);
}

// --- what arrives without asking -----------------------------------------

async function poll(p) {
  let sent, boot;
  try {
    const resp = await fetch("/sandbox/outbox?to=" + encodeURIComponent(p.openid));
    if (!resp.ok) return;
    boot = resp.headers.get("X-Sandbox-Boot");
    sent = await resp.json();
  } catch { return; }
  if (!Array.isArray(sent)) return;
  if (boot !== p.boot) { // the server restarted: its record of what it sent starts again
    if (p.boot !== undefined) p.seen = 0;
    p.boot = boot;
    saveChat(p);
  }
  for (const m of sent.slice(p.seen)) {
    if (m.kind === "customer-service") add(p, { t: "bot", text: m.text, at: m.at });
    else if ((m.kind === "template" || m.kind === "mass" || m.kind === "mass-preview") && m.text) {
      const url = m.kind === "template" && m.data && /^https?:\/\//.test(m.data.url) ? m.data.url : "";
      add(p, { t: "card", kind: m.kind, title: m.title, text: m.text, at: m.at, url });
    }
  }
  if (sent.length !== p.seen) {
    p.seen = sent.length;
    saveChat(p);
  }
}

// watch polls one phone every second while it is on the page, each poll
// after what the phone is doing, so one slow phone does not hold the others.
async function watch(p) {
  while (people.includes(p)) {
    await later(p, () => poll(p));
    await new Promise(r => setTimeout(r, 1000));
  }
}

// --- the clock -----------------------------------------------------------

function showClock(v) {
  const d = new Date(v.now);
  document.getElementById("now").textContent = dayFmt.format(d) + " " + hm.format(d);
}

async function refreshClock() {
  try { showClock(await api("/sandbox/clock")); } catch { /* the server is restarting */ }
  setTimeout(refreshClock, 2000);
}

document.getElementById("clock").addEventListener("click", async ev => {
  const b = ev.target.closest("button");
  if (!b) return;
  const noteEl = document.getElementById("clock-note");
  let body = b.dataset.advance ? { advance: b.dataset.advance } : { next: b.dataset.next };
  if (b.dataset.to) {
    const v = document.getElementById("clock-to").value; // 2026-12-24T18:00, Beijing time
    if (!v) { noteEl.textContent = "请先选一个时间"; return; }
    body = { to: (v.length === 16 ? v + ":00" : v) + "+08:00" };
  }
  noteEl.textContent = "";
  try {
    const v = await api("/sandbox/clock", body);
    showClock(v);
    if (b.dataset.next === "solar_term") noteEl.textContent = "已到" + v.next;
    else if (b.dataset.next === "seasonal") noteEl.textContent = "已到" + v.next;
  } catch (e) {
    noteEl.textContent = e.status === 409 ? "沙盒时钟只能往后拨（最多一百年）" : "没拨动：" + e.message;
  }
});

// --- people --------------------------------------------------------------

function join(p) {
  people.push(p);
  save();
  mount(p);
  watch(p);
}

function addResident() {
  const n = people.filter(p => p.kind === "resident").length + 1;
  const p = { openid: "o_web_" + randomID(), label: "居民 " + n, kind: "resident" };
  join(p);
  send(p, "follow", "");
}

// addSigned adds a resident the sandbox has signed already, with the first
// team, so booking and what follows can be tried at once.
async function addSigned() {
  let r;
  try { r = await api("/sim/signed", {}); } catch (e) { alert("没能添加：" + e.message); return; }
  const p = { openid: r.openid, label: "居民 " + r.name + "（已签约）", kind: "resident" };
  join(p);
  add(p, { t: "sys", text: "已与" + r.team + "签约，协议号 " + r.number });
  send(p, "follow", "");
}

// addDoctor gives a demo doctor a phone, bound with the code the sandbox
// issued; a doctor bound already keeps their binding.
async function addDoctor(id) {
  demo = await api("/sandbox/demo").catch(() => demo); // who is bound now
  const d = (demo.doctors || []).find(x => String(x.id) === String(id));
  if (!d) return;
  let p = people.find(q => q.kind === "doctor" && String(q.doctor) === String(id));
  if (p) { p.node.scrollIntoView(); return; }
  p = { openid: "o_web_doctor_" + d.id, label: "医生 " + d.name, kind: "doctor", doctor: d.id };
  join(p);
  if (d.binding_code) {
    send(p, "follow", "");
    send(p, "text", "绑定 " + d.binding_code);
  } else {
    add(p, { t: "sys", text: d.name + "医生的微信已经绑定过。若是在这个模拟器里绑定的，这部手机照常收发；若在别处绑定，请在管理后台的“医生”页重新发放绑定码后发送“绑定 绑定码”。" });
  }
}

document.getElementById("add").addEventListener("change", ev => {
  const v = ev.target.value;
  ev.target.value = "";
  if (v === "resident") addResident();
  else if (v === "signed") addSigned();
  else if (v.startsWith("doctor:")) addDoctor(v.slice(7));
});

async function start() {
  setup = await api("/sim/setup");
  demo = await api("/sandbox/demo");
  const add = document.getElementById("add");
  for (const d of demo.doctors || []) {
    const o = el("option", "", "医生：" + d.name + "（" + d.team + "）");
    o.value = "doctor:" + d.id;
    add.appendChild(o);
  }
  if (demo.admin) {
    document.getElementById("admin").textContent = demo.admin.password
      ? "账号 " + demo.admin.username + " 密码 " + demo.admin.password
      : "账号 " + demo.admin.username + "（密码已在后台改过）";
  }
  people = load();
  for (const p of people) { mount(p); watch(p); }
  if (people.length === 0) addResident();
  refreshClock();
}

start().catch(e => {
  document.getElementById("phones").appendChild(el("p", "sys error", "模拟器没能启动：" + e.message));
});
