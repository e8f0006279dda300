"use strict";
(function () {
  const lang = SW_I18N.pick(null);
  SW_I18N.apply(document, lang);
  const form = document.getElementById("login-form");
  const err = document.getElementById("login-error");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.textContent = "";
    const body = {
      user: document.getElementById("login-user").value,
      password: document.getElementById("login-password").value,
    };
    let resp;
    try {
      resp = await fetch("/api/login", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
        credentials: "same-origin",
      });
    } catch (e) {
      err.textContent = SW_I18N.t(lang, "network_error");
      return;
    }
    if (resp.ok) {
      window.location.assign("/");
      return;
    }
    const key = resp.status === 429 ? "too_many_logins" : "wrong_login";
    err.textContent = SW_I18N.t(lang, key);
  });
})();
