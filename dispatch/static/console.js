// 未保热线 staff consoles: the only script, served from our own origin (the pages' CSP
// allows no other). It refreshes the live panels and asks before irreversible actions.
"use strict";

function poll(panel) {
  const seconds = Number(panel.dataset.pollSeconds || "5");
  const mode = panel.dataset.pollMode || "replace";
  const tick = async () => {
    let url = panel.dataset.pollUrl;
    if (mode === "prepend") {
      url += (url.includes("?") ? "&" : "?") + "after=" + encodeURIComponent(panel.dataset.after || "0");
    } else if (mode === "list") {
      // The whole list again, in its order, only when it changed; rows newer than the
      // page's own are marked new.
      url += (url.includes("?") ? "&" : "?") + "after=" + encodeURIComponent(panel.dataset.after || "0")
        + "&v=" + encodeURIComponent(panel.dataset.version || "");
    }
    try {
      const response = await fetch(url, {
        credentials: "same-origin",
        headers: { "X-Console-Poll": "1" },
      });
      if (response.status === 401) {
        window.location.reload(); // the reload leads to the sign-in page
        return;
      }
      if (response.status === 204) {
        // Unchanged.
      } else if (response.ok) {
        const html = await response.text();
        if (mode === "list") {
          panel.innerHTML = html; // server-rendered, escaped
          panel.dataset.version = response.headers.get("X-List-Version") || "";
          const fresh = panel.querySelectorAll("tr.new").length;
          document.title = (fresh ? "(" + fresh + ") " : "") + document.title.replace(/^\(\d+\) /, "");
        } else if (mode === "prepend") {
          if (html.trim()) {
            panel.insertAdjacentHTML("afterbegin", html); // server-rendered, escaped
            const fresh = panel.querySelectorAll("tr.new").length;
            document.title = "(" + fresh + ") " + document.title.replace(/^\(\d+\) /, "");
          }
          panel.dataset.after = response.headers.get("X-After-Id") || panel.dataset.after;
        } else {
          panel.innerHTML = html;
        }
      }
    } catch (err) {
      // A dropped connection: the next tick tries again.
    }
    window.setTimeout(tick, seconds * 1000);
  };
  window.setTimeout(tick, seconds * 1000);
}

document.querySelectorAll("[data-poll-url]").forEach(poll);

document.querySelectorAll("form[data-confirm]").forEach((form) => {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });
});

// Live help while a call is taken: the notes are judged as they are typed (after a pause),
// and the judgement (server-rendered, escaped) is shown beside the form.
function liveTriage(area) {
  const target = document.getElementById(area.dataset.triageTarget);
  const form = area.form;
  if (!target || !form) {
    return;
  }
  let timer = null;
  let last = "";
  const ask = async () => {
    const text = area.value;
    if (text === last) {
      return;
    }
    last = text;
    const body = new URLSearchParams();
    body.set("csrf_token", form.querySelector("input[name=csrf_token]").value);
    body.set("text", text);
    try {
      const response = await fetch(area.dataset.triageUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-Console-Poll": "1" },
        body: body,
      });
      if (response.ok) {
        target.innerHTML = await response.text();
      }
    } catch (err) {
      // Offline for a moment: the next pause in typing tries again.
    }
  };
  area.addEventListener("input", () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(ask, 600);
  });
}

document.querySelectorAll("textarea[data-triage-url]").forEach(liveTriage);
