// Starts Swagger UI on /api/docs. A file of its own, not an inline script: the shop's
// Content-Security-Policy allows scripts from this origin only.
window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null, // the default would send the schema to validator.swagger.io
    tryItOutEnabled: false,
  });
});
