// Starts Swagger UI on /docs from the local copy (swagger-ui-dist from npm), reading /openapi.json.
// A file of its own because the Content-Security-Policy allows no inline script.
window.addEventListener("DOMContentLoaded", function () {
  window.SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: false });
});
