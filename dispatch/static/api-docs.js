// Starts Swagger UI on the API docs page (a file of ours, so the page needs no inline script).
"use strict";
window.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    validatorUrl: null, // no calls to swagger.io
    presets: [SwaggerUIBundle.presets.apis],
  });
});
