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
      if (response.ok) {
        const html = await response.text();
        if (mode === "prepend") {
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
