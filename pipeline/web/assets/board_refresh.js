// The overdue board reloads itself while "Reload this page automatically" is ticked (WCAG 2.2.1: the manager
// can turn it off; the choice is kept for the browser tab). It never reloads while the page is hidden or
// while the filters form has the focus. Served from /overdue/refresh.js: the Content-Security-Policy
// allows no inline script.
const box = document.getElementById("auto-reload");
const KEY = "safeguard-overdue-auto-reload";
if (box) {
  box.checked = window.sessionStorage.getItem(KEY) !== "off";
  box.addEventListener("change", () => window.sessionStorage.setItem(KEY, box.checked ? "on" : "off"));
  const seconds = Number(box.dataset.seconds) || 60;
  window.setInterval(() => {
    const typing = document.activeElement && document.activeElement.closest("form.app-filters");
    if (box.checked && document.visibilityState === "visible" && !typing) {
      window.location.reload();
    }
  }, seconds * 1000);
}
