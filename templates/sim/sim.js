// The browser simulator: each phone is one person in WeChat. What they do
// goes to POST /sim/say, which sends it to /wechat signed as WeChat would;
// what the account sends them afterwards (customer-service, template and
// mass messages) is read from /sandbox/outbox every second.
"use strict";

const storeKey = "jiayi.sim.v1";
const phones = document.getElementById("phones");
let setup = { account: "", menu: [] };
let demo = { doctors: [] };
let people = load();

function load() {
  try { return JSON.parse(localStorage.getItem(storeKey)) || []; } catch { return []; }
}
function save() {
  localStorage.setItem(storeKey, JSON.stringify(people.map(p => ({ openid: p.openid, label: p.label, kind: p.kind, doctor: p.doctor }))));
}

async function api(path, body) {
  const init = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const resp = await fetch(path, init);
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(data.error || resp.status + " " + resp.statusText);
  return data;
}

// Times are shown as the person's phone would: Beijing time, sandbox clock.
const dayFmt = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", year: "numeric", month: "long", day: "numeric", weekday: "short" });
const minuteFmt = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false });
const hm = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit", hour12: false });
function when(at) { return minuteFmt.format(new Date(at)); }

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
  node.querySelector(".account").textContent = setup.account;
  p.node = node;
  p.msgs = node.querySelector(".msgs");
  p.seen = 0;
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
    input.placeholder = p.voice ? "说的话（微信语音识别出的文字）" : "输入消息";
    input.focus();
  });
  form.querySelector(".to-menu").addEventListener("click", () => { form.hidden = true; menu.hidden = false; });
  menu.querySelector(".to-keyboard").addEventListener("click", () => { menu.hidden = true; form.hidden = false; closeSubs(node); });
  drawMenu(p, menu.querySelector(".buttons"));
  node.querySelector(".remove").addEventListener("click", () => {
    people = people.filter(q => q !== p);
    node.remove();
    save();
  });
  phones.appendChild(node);
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
  note(p, "点了菜单“" + item.name + "”");
  send(p, "click", item.key, true);
}

// send queues one action, so a person's messages reach the bot in order.
function send(p, kind, text, quiet) {
  p.queue = p.queue.then(async () => {
    let row;
    if (kind === "follow") note(p, "关注了公众号");
    else if (!quiet) row = mine(p, kind, text);
    try {
      const r = await api("/sim/say", { openid: p.openid, kind, text });
      if (row) stamp(p, row, r.at);
      if (r.reply) theirs(p, r.reply, r.at);
    } catch (e) {
      note(p, "没有送达：" + e.message, true);
    }
  });
  return p.queue;
}

function scroll(p) { p.msgs.scrollTop = p.msgs.scrollHeight; }

function mine(p, kind, text) {
  const row = el("div", "row me");
  row.appendChild(el("div", "avatar", p.kind === "doctor" ? "医" : "我"));
  const b = el("div", "bubble");
  if (kind === "voice") {
    b.classList.add("spoken");
    b.appendChild(document.createTextNode(Math.max(1, Math.min(60, Math.round(text.length / 3))) + "″"));
    b.appendChild(el("span", "heard", text));
  } else {
    b.textContent = text;
  }
  row.appendChild(b);
  p.msgs.appendChild(row);
  scroll(p);
  return row;
}

function stamp(p, row, at) {
  const t = el("div", "at", when(at));
  row.after(t);
  scroll(p);
}

function theirs(p, text, at) {
  const row = el("div", "row bot");
  row.appendChild(el("div", "avatar", "家"));
  row.appendChild(el("div", "bubble", text));
  p.msgs.appendChild(row);
  stamp(p, row, at);
}

function note(p, text, error) {
  p.msgs.appendChild(el("div", error ? "sys error" : "sys", text));
  scroll(p);
}

// card draws a template or mass message as WeChat shows it: a title, its
// time, the words, and for a template the link to its details.
function card(p, m) {
  const c = el("div", "card " + m.kind);
  c.appendChild(el("div", "card-title", m.title || (m.kind === "mass" ? "健康提示" : "服务通知")));
  c.appendChild(el("div", "card-time", when(m.at)));
  c.appendChild(el("div", "card-body", m.text || ""));
  const link = m.kind === "template" && m.data && /^https?:\/\//.test(m.data.url) && m.data.url;
  if (link) {
    const a = el("a", "card-foot", "详情");
    a.href = link;
    a.target = "_blank";
    a.rel = "noopener";
    c.appendChild(a);
  }
  p.msgs.appendChild(c);
  scroll(p);
}

// --- what arrives without asking -----------------------------------------

async function poll(p) {
  let sent;
  try { sent = await api("/sandbox/outbox?to=" + encodeURIComponent(p.openid)); } catch { return; }
  for (const m of sent.slice(p.seen)) {
    if (m.kind === "customer-service") theirs(p, m.text, m.at);
    else if (m.kind === "template" || m.kind === "mass" || m.kind === "subscribe") card(p, m);
  }
  p.seen = Math.max(p.seen, sent.length);
}

async function pollAll() {
  await Promise.all(people.map(poll));
  setTimeout(pollAll, 1000);
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
  let body = b.dataset.advance ? { advance: b.dataset.advance } : { next: b.dataset.next };
  if (b.dataset.to) {
    const v = document.getElementById("clock-to").value; // 2026-12-24T18:00, Beijing time
    if (!v) return;
    body = { to: (v.length === 16 ? v + ":00" : v) + "+08:00" };
  }
  const noteEl = document.getElementById("clock-note");
  try {
    const v = await api("/sandbox/clock", body);
    showClock(v);
    noteEl.textContent = v.next ? "已到：" + v.next : "";
  } catch (e) {
    noteEl.textContent = e.message;
  }
});

// --- people --------------------------------------------------------------

async function addResident() {
  const n = people.filter(p => p.kind === "resident").length + 1;
  const p = { openid: "o_web_" + randomID(), label: "居民 " + n, kind: "resident" };
  people.push(p);
  save();
  mount(p);
  send(p, "follow", "");
}

// addSigned adds a resident the sandbox has signed already, with the first
// team, so booking and what follows can be tried at once.
async function addSigned() {
  let r;
  try { r = await api("/sim/signed", {}); } catch (e) { alert("没能添加：" + e.message); return; }
  const p = { openid: r.openid, label: "居民 " + r.name + "（已签约）", kind: "resident" };
  people.push(p);
  save();
  mount(p);
  note(p, "已与" + r.team + "签约，协议号 " + r.number);
  send(p, "follow", "");
}

async function addDoctor(id) {
  const d = demo.doctors.find(x => String(x.id) === String(id));
  if (!d) return;
  let p = people.find(q => q.kind === "doctor" && String(q.doctor) === String(id));
  if (p) { p.node.scrollIntoView(); return; }
  p = { openid: "o_web_doctor_" + d.id, label: "医生 " + d.name, kind: "doctor", doctor: d.id };
  people.push(p);
  save();
  mount(p);
  send(p, "follow", "");
  if (d.binding_code) {
    send(p, "text", "绑定 " + d.binding_code);
  } else {
    note(p, d.name + "医生的微信已经绑定过；如果不是在这里绑定的，请在管理后台重新发放绑定码。");
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
  for (const p of people) mount(p);
  if (people.length === 0) await addResident();
  refreshClock();
  pollAll();
}

start().catch(e => {
  document.getElementById("phones").appendChild(el("p", "sys error", "模拟器没能启动：" + e.message));
});
