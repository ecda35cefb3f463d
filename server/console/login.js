"use strict";
document.getElementById("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = document.getElementById("login-error");
  error.hidden = true;
  const body = {
    username: document.getElementById("username").value,
    password: document.getElementById("password").value,
  };
  const response = await fetch("/api/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (response.ok) {
    window.location.assign("/console");
    return;
  }
  const detail = (await response.json().catch(() => ({}))).detail;
  error.textContent = typeof detail === "string" ? detail : "登录失败 Login failed";
  error.hidden = false;
});
