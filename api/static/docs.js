// Renders /v1/openapi.json (relative to this page, /v1/docs) with Swagger UI.
window.ui = SwaggerUIBundle({ url: "openapi.json", dom_id: "#ui", deepLinking: true });
