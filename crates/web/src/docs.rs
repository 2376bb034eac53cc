//! The OpenAPI document of a service and its docs page (Swagger UI served from the binary,
//! so it works with no internet).

use utoipa::Modify;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder};
use utoipa_swagger_ui::SwaggerUi;

/// The security scheme name routes use: `security(("bearer" = ["node"]))`, where the list
/// holds the permission nodes the route requires.
pub const BEARER: &str = "bearer";

/// Adds the bearer scheme, the `Problem` schema and the error responses every route shares.
#[derive(Debug, Clone, Copy)]
pub struct CommonDocs;

fn problem(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .into()
}

impl Modify for CommonDocs {
    fn modify(&self, api: &mut OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.schemas.insert(
            "Problem".to_owned(),
            <crate::error::Problem as utoipa::PartialSchema>::schema(),
        );
        components.schemas.insert(
            "FieldError".to_owned(),
            <crate::error::FieldError as utoipa::PartialSchema>::schema(),
        );
        for item in api.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                add_common_responses(op);
            }
        }
    }
}

fn add_common_responses(op: &mut Operation) {
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let takes_input =
        op.request_body.is_some() || op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let mut add = |status: &str, description: &str| {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| problem(description));
    };
    if takes_input {
        add("400", "Invalid input; `errors` names each bad field");
    }
    if secured {
        add("401", "Missing, malformed, expired or foreign token");
        add(
            "403",
            "The caller lacks a permission node this route requires",
        );
    }
    add("500", "Internal error; the body carries only the trace id");
    add(
        "503",
        "A dependency is down; retry after `Retry-After` seconds",
    );
}

/// The docs page at `/docs` over the document served at `/openapi.json`.
pub fn swagger(openapi: OpenApi) -> SwaggerUi {
    SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", openapi)
}

/// Every operation of a document as `(method, path, required nodes, secured)`, for tests that
/// walk all routes.
pub fn operations(api: &OpenApi) -> Vec<(String, String, Vec<String>, bool)> {
    let mut out = Vec::new();
    for (path, item) in &api.paths.paths {
        let ops = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("PATCH", &item.patch),
            ("DELETE", &item.delete),
        ];
        for (method, op) in ops {
            if let Some(op) = op {
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                out.push((method.to_owned(), path.clone(), required_nodes(op), secured));
            }
        }
    }
    out
}

/// The permission nodes an operation requires, as declared in its `bearer` security scopes.
pub fn required_nodes(op: &Operation) -> Vec<String> {
    let Ok(value) = serde_json::to_value(op) else {
        return Vec::new();
    };
    value["security"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|req| req.get(BEARER))
        .filter_map(|scopes| scopes.as_array())
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}
