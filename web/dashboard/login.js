// The login page: the name and password go to POST /login as JSON (a cross-site form
// cannot send that); the broker answers with a session cookie the script never sees
// (HttpOnly), then the dashboard opens.
"use strict";

const form = document.getElementById("login-form");
const error = document.getElementById("login-error");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.hidden = true;
  const button = document.getElementById("login-submit");
  button.disabled = true;
  try {
    const res = await fetch("/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        user: document.getElementById("login-user").value,
        password: document.getElementById("login-password").value,
      }),
    });
    if (res.ok) {
      location.href = "/#/overview";
      return;
    }
    let message = `HTTP ${res.status}`;
    try { message = (await res.json()).message || message; } catch { /* not JSON */ }
    error.textContent = `Login failed: ${message}`;
    error.hidden = false;
  } catch (e) {
    error.textContent = `Broker unreachable: ${e.message}`;
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
});
