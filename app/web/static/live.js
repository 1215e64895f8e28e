// photo-relay status page: keeps counts, the queue's progress and the newest files fresh
// through the /v1/events WebSocket. The page is complete without it; this only updates it.
"use strict";

(function () {
  const STATES = ["received", "relaying", "retry", "verified", "failed", "damaged"];
  const SHORT = {
    received: "waiting", relaying: "copying", retry: "retrying",
    verified: "verified", failed: "failed", damaged: "send again",
  };
  const WORDS = { // as the item page says them (app/observe/wording.py)
    received: "Safe here, waiting to be copied", relaying: "Being copied now",
    retry: "Safe here, waiting to try the copy again", verified: "Copied and verified",
    failed: "Could not be copied (safe here)",
    damaged: "Send it again: the copy kept here is damaged",
  };
  const live = document.getElementById("live");
  let counts = null;
  const resume = document.getElementById("resume");
  let lastId = resume ? Number(resume.dataset.journalId || 0) : 0;
  let delay = 1000;

  function setText(selector, text) {
    document.querySelectorAll(selector).forEach((el) => { el.textContent = text; });
  }

  function updateCounts(next) {
    if (!next) return;
    counts = next;
    let total = 0;
    STATES.forEach((state) => {
      total += next[state] || 0;
      setText(`[data-count="${state}"]`, String(next[state] || 0));
    });
    setText('[data-count="total"]', String(total));
    const pending = (next.received || 0) + (next.relaying || 0) + (next.retry || 0);
    setText("#queue-total", `(${pending})`);
    setText("#failed-total", `(${next.failed || 0})`);
    updateVerdict(total, pending, next.failed || 0, next.damaged || 0);
  }

  function updateVerdict(total, pending, failed, damaged) {
    const box = document.getElementById("verdict");
    if (!box || box.dataset.static === "yes") return; // paused relay, quiet device: server knows best
    let level = "safe";
    let text = total === 0 ? "Nothing received yet. Send a photo from your phone."
      : total === 1 ? "Everything is safe: the file is a verified copy."
      : `Everything is safe: all ${total} files are verified copies.`;
    if (damaged) {
      level = "attention";
      text = `${damaged} file(s) must be sent again: the copy kept on this machine is damaged. The list below says which; send them again from the phone.`;
    } else if (failed) {
      level = "attention";
      text = `${failed} file(s) could not be copied to the destination. They are safe on this machine; see why below, then retry.`;
    } else if (pending) {
      level = "busy";
      text = `${pending} file(s) are safe on this machine and being copied to the destination.`;
    }
    box.className = `verdict level-${level}`;
    setText("#headline", text);
  }

  // While the destination does not answer, the server words the headline (the outage
  // and the count) and sends it with the counts; once it answers, the page words it again.
  function serverHeadline(event) {
    const box = document.getElementById("verdict");
    if (!box) return;
    if (event.headline) {
      box.dataset.static = "yes";
      box.className = `verdict level-${event.headline.level}`;
      setText("#headline", event.headline.text);
    } else if (event.event === "relay.destination_back") {
      box.dataset.static = "no";
    }
  }

  function markState(sha, state) {
    document.querySelectorAll(`[data-sha="${sha}"] [data-state]`).forEach((el) => {
      el.textContent = SHORT[state] || state;
      el.className = `badge state-${state}`;
    });
  }

  function queueRow(item) {
    const queue = document.getElementById("queue");
    if (!queue) return null;
    let row = queue.querySelector(`li[data-sha="${item.sha256}"]`);
    if (row) return row;
    const empty = queue.querySelector("li.empty");
    if (empty) empty.remove();
    row = document.createElement("li");
    row.dataset.sha = item.sha256;
    const link = document.createElement("a");
    link.href = `/items/${item.sha256}`;
    link.textContent = item.original_name || item.name || item.sha256.slice(0, 12);
    const badge = document.createElement("span");
    badge.dataset.state = "";
    const bar = document.createElement("progress");
    bar.hidden = true;
    row.append(link, " ", badge, " ", bar);
    queue.append(row);
    return row;
  }

  function addRecent(item) {
    const recent = document.getElementById("recent");
    if (!recent || recent.querySelector(`li[data-sha="${item.sha256}"]`)) return;
    const empty = recent.querySelector("li.empty");
    if (empty) empty.remove();
    const li = document.createElement("li");
    li.dataset.sha = item.sha256;
    const link = document.createElement("a");
    link.href = `/items/${item.sha256}`;
    const img = document.createElement("img");
    img.alt = "";
    img.width = 160;
    img.height = 160;
    img.src = item.kind === "photo" ? `/thumbnails/${item.sha256}.jpg`
      : item.kind === "video" ? "/static/video.svg" : "/static/file.svg";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = item.original_name;
    link.append(img, name);
    const badge = document.createElement("span");
    badge.dataset.state = "";
    const when = document.createElement("span");
    when.className = "muted";
    when.textContent = "just now";
    li.append(link, badge, when);
    recent.prepend(li);
  }

  function seenDevice(name) {
    document.querySelectorAll("[data-device]").forEach((li) => {
      if (li.dataset.device !== name) return;
      li.classList.remove("quiet");
      li.querySelectorAll(".problem").forEach((el) => el.remove());
      const when = li.querySelector("[data-last-backup]");
      if (when) when.textContent = "last backup just now";
    });
  }

  function logActivity(event) {
    const list = document.getElementById("activity");
    if (!list) return;
    document.getElementById("activity-section").hidden = false;
    const li = document.createElement("li");
    const time = document.createElement("time");
    time.dateTime = event.at;
    time.textContent = event.when || ""; // the server says times in the owner's words
    li.append(time, event.message);
    list.prepend(li);
    while (list.children.length > 12) list.lastElementChild.remove();
  }

  function onJournal(event) {
    if (event.id <= lastId) return; // seen before a reconnect
    lastId = event.id;
    serverHeadline(event);
    updateCounts(event.counts);
    logActivity(event);
    const item = event.item;
    if (!item) return;
    if (event.event === "item.received") addRecent(item);
    if (event.event === "item.received") seenDevice(item.device); // the first sender
    if (["received", "relaying", "retry"].includes(item.state)) queueRow(item);
    else {
      const row = document.querySelector(`#queue li[data-sha="${item.sha256}"]`);
      if (row) row.remove();
      const queue = document.getElementById("queue");
      if (queue && !queue.children.length) {
        const empty = document.createElement("li");
        empty.className = "empty";
        empty.textContent = "Nothing waiting: every file received so far has been dealt with.";
        queue.append(empty);
      }
    }
    markState(item.sha256, item.state);
    if (item.state === "failed") {
      const note = document.getElementById("failed-new");
      if (note) note.hidden = false;
    }
    const itemState = document.getElementById("item-state");
    const page = document.querySelector(".item[data-sha]");
    if (itemState && page && page.dataset.sha === item.sha256) {
      itemState.className = `badge state-${item.state}`;
      itemState.textContent = WORDS[item.state] || item.state;
    }
  }

  function onProgress(event) {
    const row = queueRow({ sha256: event.sha256, name: event.name });
    if (!row) return;
    const bar = row.querySelector("progress");
    bar.hidden = false;
    bar.max = event.size || 1;
    if (event.sent === null) bar.removeAttribute("value");
    else bar.value = event.sent;
    markState(event.sha256, "relaying");
  }

  function onProgressDone(event) {
    const bar = document.querySelector(`#queue li[data-sha="${event.sha256}"] progress`);
    if (bar) bar.value = bar.max;
  }

  function onSnapshot(event) {
    serverHeadline(event);
    updateCounts(event.counts);
    (event.progress || []).forEach(onProgress);
  }

  const handlers = {
    journal: onJournal, progress: onProgress, progress_done: onProgressDone, snapshot: onSnapshot,
  };

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/v1/events?after=${lastId}`);
    socket.addEventListener("open", () => {
      delay = 1000;
      if (live) { live.hidden = false; live.classList.remove("off"); live.textContent = "live"; }
    });
    socket.addEventListener("message", (message) => {
      const event = JSON.parse(message.data);
      const handler = handlers[event.type];
      if (handler) handler(event);
    });
    socket.addEventListener("close", () => {
      if (live) { live.classList.add("off"); live.textContent = "reconnecting"; }
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    });
  }

  document.documentElement.dataset.live = "starting";
  connect();
})();
