//! The OpenAPI 3.1 document: generated from the handlers' annotations, then completed with what
//! every authenticated operation shares (security, error responses, rate-limit headers).

use crate::error::{FieldError, Problem};
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ContentBuilder, ObjectBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder, Type,
};
use utoipa::OpenApi as _;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "printfarm",
        description = "Multi-tenant API for 3D print farms. Authenticate with `authorization: ApiKey <key>` \
(or Bearer, `x-api-key`, Basic) plus `x-printago-storeid: <storeId>`; a person signed in to a dashboard \
(`POST /v1/auth/login`) sends the `pf_session` cookie instead of a key. Each key (and each user) may make 60 requests a \
minute and 600 an hour (sliding windows); every authenticated response carries the rate-limit headers. \
Enums in responses (event types, problem codes, statuses) may gain values in later versions: treat an \
unknown value as \"other\" rather than an error.",
        license(name = "Apache-2.0")
    ),
    components(schemas(Problem, FieldError, crate::domain::EventType, super::events::WebhookMessage,
        crate::domain::orders::OrderPrintRun, crate::domain::printer_commands::CommandName,
        crate::domain::printers::PrinterConnectivity, crate::domain::printers::PrinterAlert,
        crate::domain::spools::SpoolUsage)),
    tags(
        (name = "API keys", description = "Keys, their permissions, rolling and revocation"),
        (name = "Users and sessions", description = "People signing in to a dashboard: sessions, who am I, passwords"),
        (name = "Roles and permissions", description = "The permission catalogue, the built-in roles and the store's own roles"),
        (name = "Store", description = "The caller's store"),
        (name = "Audit log", description = "Who changed what, and from where"),
        (name = "Printers", description = "The farm's printers"),
        (name = "Printer commands", description = "Commands for printers and their status"),
        (name = "Materials", description = "Filament types"),
        (name = "Spools", description = "Spools of a material (material instances)"),
        (name = "Parts", description = "The parts library"),
        (name = "SKUs", description = "Sellable products made of parts"),
        (name = "Orders", description = "Orders of SKUs, and printing them"),
        (name = "Print jobs", description = "The print queue: jobs, their states and bulk actions"),
        (name = "Webhooks", description = "Webhook endpoints and their deliveries"),
        (name = "Events", description = "Catching up on events missed over MQTT or webhooks"),
        (name = "Operations", description = "Health and readiness")
    )
)]
pub struct ApiDoc;

const CREDENTIALS: [&str; 5] = ["apiKey", "bearer", "xApiKey", "basic", "session"];

pub fn base() -> OpenApi {
    ApiDoc::openapi()
}

/// Adds security schemes and, on every operation that needs a key, the shared responses.
pub fn finalize(mut doc: OpenApi) -> OpenApi {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "apiKey",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "authorization",
            "`ApiKey <key>` (Printago style)",
        ))),
    );
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    components.add_security_scheme(
        "xApiKey",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))),
    );
    components.add_security_scheme(
        "basic",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Basic)
                .description(Some("The key as user name, empty password"))
                .build(),
        ),
    );
    components.add_security_scheme(
        "session",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            crate::auth::session::COOKIE,
            "A signed-in user's session (`POST /v1/auth/login` sets it); a change needs an \
             `Origin` of this site or of `PF_CORS_ORIGINS`",
        ))),
    );
    components.add_security_scheme(
        "storeId",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "x-printago-storeid",
            "The store id (alias header: `x-store-id`)",
        ))),
    );
    doc.security = Some(key_requirements(&CREDENTIALS));

    super::filter_params::add(&mut doc);
    super::sdk_names::add(&mut doc);
    close_command_variants(&mut doc);
    doc.servers = Some(vec![
        utoipa::openapi::server::ServerBuilder::new()
            .url("/")
            .description(Some("The server this document came from"))
            .build(),
        utoipa::openapi::server::ServerBuilder::new()
            .url("http://127.0.0.1:8080")
            .description(Some("`printfarm serve` on this machine, with its defaults"))
            .build(),
    ]);
    for (path, item) in doc.paths.paths.iter_mut() {
        let has_path_params = path.contains('{');
        if let Some(post) = item.post.as_mut().filter(|op| op.security.is_none()) {
            add_idempotency_key(post);
        }
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for op in operations.into_iter().flatten() {
            complete(op, has_path_params);
            declare_retry_after(&mut op.responses.responses);
        }
    }
    doc
}

/// Says what utoipa cannot read from the derives of `Command`: it drops an enum's
/// `deny_unknown_fields`, so each command's schema (named by `sdk_names`) is closed here, and
/// it has no `uniqueItems` for a list, so `home-axis` says here that its axes are named once.
/// The server refuses both, and a client generated from the document should too.
fn close_command_variants(doc: &mut OpenApi) {
    use utoipa::openapi::schema::{AdditionalProperties, Schema};
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    let Some(RefOr::T(Schema::OneOf(commands))) = components.schemas.get("Command") else {
        return;
    };
    let variants: Vec<String> = commands
        .items
        .iter()
        .filter_map(|item| match item {
            RefOr::Ref(r) => r.ref_location.rsplit('/').next().map(str::to_owned),
            RefOr::T(_) => None,
        })
        .collect();
    for name in variants {
        let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(&name) else {
            continue;
        };
        object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
        if let Some(RefOr::T(Schema::Array(axes))) = object.properties.get_mut("axes") {
            axes.unique_items = true;
        }
    }
}

/// Adds what the operation shares with its kind: the body problems of a public one; the
/// permission, credentials, limits and error answers of an authenticated one.
fn complete(op: &mut utoipa::openapi::path::Operation, has_path_params: bool) {
    let has_body = op.request_body.is_some();
    if is_public(op) {
        // Declared with `security(())`: only what any body-taking operation can answer.
        if has_body {
            for (status, description) in BODY_PROBLEMS {
                add(op, status, description);
            }
            add(op, UNAVAILABLE.0, UNAVAILABLE.1);
        }
        return;
    }
    if key_only(op.description.as_deref().unwrap_or("")) {
        op.security = Some(key_requirements(&CREDENTIALS[..4]));
    }
    if let Some(permission) = required_permission(op.description.as_deref().unwrap_or("")) {
        op.extensions = Some(
            ExtensionsBuilder::new()
                .add("x-required-permission", permission)
                .build(),
        );
    }
    for response in op.responses.responses.values_mut() {
        if let RefOr::T(r) = response {
            add_rate_limit_headers(r);
        }
    }
    add(op, "401", "Missing or invalid credentials or store id");
    add(
        op,
        "403",
        "The key lacks a permission, or the client IP is not allowed",
    );
    add(op, "429", "Rate limit exceeded (see `Retry-After`)");
    add(op, UNAVAILABLE.0, UNAVAILABLE.1);
    // Only where they can happen: 404 names an object in the path, 422 a body field
    // (or, on a POST, an Idempotency-Key used for another request).
    if has_path_params {
        add(op, "404", "No such object in this store");
    }
    if has_body {
        for (status, description) in BODY_PROBLEMS {
            add(op, status, description);
        }
    }
    let has_query = op
        .parameters
        .iter()
        .flatten()
        .any(|p| p.parameter_in == utoipa::openapi::path::ParameterIn::Query);
    if has_query {
        add(op, "400", "A query parameter is invalid");
        add(
            op,
            "414",
            "The request target (path and query) is longer than 8 KiB",
        );
    }
}

/// Declares a problem answer, unless the operation declares that status itself.
fn add(op: &mut utoipa::openapi::path::Operation, status: &str, description: &str) {
    op.responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| RefOr::T(problem(status, description)));
}

/// One requirement per credential scheme, each with the store id.
fn key_requirements(schemes: &[&str]) -> Vec<SecurityRequirement> {
    schemes
        .iter()
        .map(|c| {
            SecurityRequirement::new(*c, Vec::<String>::new()).add("storeId", Vec::<String>::new())
        })
        .collect()
}

/// An operation for API keys only, as its doc comment says (a session gets `403
/// api_key_required`): its security lists the key schemes, not the session cookie.
fn key_only(description: &str) -> bool {
    description.contains("a signed-in user is told `403 api_key_required`")
}

/// Every `429` and `503` says to wait `Retry-After` seconds, and carries the header.
fn declare_retry_after(responses: &mut std::collections::BTreeMap<String, RefOr<Response>>) {
    for (status, response) in responses.iter_mut() {
        if let (true, RefOr::T(response)) = (status == "429" || status == "503", response) {
            response
                .headers
                .entry("Retry-After".to_owned())
                .or_insert_with(|| integer_header("Seconds to wait before retrying"));
        }
    }
}

/// What any operation that takes a JSON body may answer, besides its own outcomes.
const BODY_PROBLEMS: [(&str, &str); 4] = [
    ("400", "The body is not valid JSON"),
    ("413", "The body is too large"),
    ("415", "The body is not application/json"),
    ("422", "A field is invalid (see `errors`)"),
];

/// What an operation that reads a body or needs credentials may answer when the server cannot
/// serve it now.
const UNAVAILABLE: (&str, &str) = (
    "503",
    "Unavailable for now (a dependency down, the request timed out, a lock held elsewhere): \
     retry after `Retry-After`",
);

/// An operation that needs no credentials (`security(())`: one empty requirement).
fn is_public(op: &utoipa::openapi::path::Operation) -> bool {
    op.security.as_ref().is_some_and(|requirements| {
        requirements
            .iter()
            .any(|r| serde_json::to_value(r).is_ok_and(|v| v == serde_json::json!({})))
    })
}

/// `Idempotency-Key` on an authenticated POST (`middleware::idempotency`), and its answers.
fn add_idempotency_key(op: &mut utoipa::openapi::path::Operation) {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    let parameter = ParameterBuilder::new()
        .name("idempotency-key")
        .parameter_in(ParameterIn::Header)
        .required(utoipa::openapi::Required::False)
        .description(Some(
            "Makes the request safe to retry: a repeat with the same key and request within 24 \
             hours gets the first answer back (`Idempotent-Replayed: true`) without doing the \
             work again. An answer that carried a secret (a new API key, a webhook signing \
             secret, a printer credential) is never kept: its repeat is `409 conflict`, with \
             the `Location` of what the first request made. Per store and per API key. 1–255 \
             visible ASCII characters; a UUID is a good choice.",
        ))
        .schema(Some(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::Type::String)
                .min_length(Some(1))
                .max_length(Some(255))
                .pattern(Some("^[!-~]+$")),
        ))
        .build();
    op.parameters.get_or_insert_with(Vec::new).push(parameter);
    let responses = &mut op.responses.responses;
    responses
        .entry("400".to_owned())
        .or_insert_with(|| RefOr::T(problem("400", "The Idempotency-Key is malformed")));
    responses.entry("422".to_owned()).or_insert_with(|| {
        RefOr::T(problem(
            "422",
            "A field is invalid (see `errors`), or the Idempotency-Key was used for another request",
        ))
    });
    const KEY_CONFLICT: &str = "a request with this Idempotency-Key is still in progress \
        (`idempotency_key_in_use`), or was done and its answer carried a secret, which is not \
        kept (`conflict`, with the first request's `Location`)";
    match responses.get_mut("409") {
        Some(RefOr::T(own)) => {
            own.description = format!("{}; or {KEY_CONFLICT}", own.description);
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            let description = format!("A{}", &KEY_CONFLICT[1..]);
            responses.insert("409".to_owned(), RefOr::T(problem("409", &description)));
        }
    }
    for (status, response) in responses.iter_mut() {
        if let (true, RefOr::T(response)) = (status.starts_with('2'), response) {
            response.headers.insert(
                "idempotent-replayed".to_owned(),
                HeaderBuilder::new()
                    .schema(
                        utoipa::openapi::ObjectBuilder::new()
                            .schema_type(Type::String)
                            .enum_values(Some(["true"])),
                    )
                    .description(Some(
                        "Present on an answer replayed for a repeated Idempotency-Key",
                    ))
                    .build(),
            );
        }
    }
}

/// The permission named in a handler's doc comment ("Required permission: `x`").
fn required_permission(description: &str) -> Option<String> {
    let rest = description.split("Required permission: `").nth(1)?;
    rest.split('`').next().map(str::to_owned)
}

fn integer_header(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::Integer))
        .description(Some(description))
        .build()
}

fn string_header(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String))
        .description(Some(description))
        .build()
}

fn add_rate_limit_headers(r: &mut Response) {
    let headers = [
        (
            "RateLimit-Policy",
            string_header("The quotas: `\"minute\";q=60;w=60, \"hour\";q=600;w=3600`"),
        ),
        (
            "RateLimit",
            string_header("Remaining requests and seconds until a slot frees, per window"),
        ),
        (
            "X-RateLimit-Limit",
            integer_header("Quota of the tighter window"),
        ),
        (
            "X-RateLimit-Remaining",
            integer_header("Requests left in the tighter window"),
        ),
        (
            "X-RateLimit-Reset",
            integer_header("Seconds until the tighter window frees a slot"),
        ),
    ];
    for (name, header) in headers {
        r.headers.entry(name.to_owned()).or_insert(header);
    }
}

fn problem(status: &str, description: &str) -> Response {
    let mut builder = ResponseBuilder::new().description(description).content(
        "application/problem+json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    );
    if status == "401" {
        builder = builder.header("WWW-Authenticate", string_header("`ApiKey`"));
    }
    let mut response = builder.build();
    if status != "401" {
        add_rate_limit_headers(&mut response);
    }
    response
}

/// The OpenAPI 3.1 `webhooks` section: one entry per event type of the catalogue, each a `POST`
/// of a `WebhookMessage` signed as Standard Webhooks specifies, narrowed to that event: its
/// `type`, and the schema of the entity in `data.entities`.
pub fn webhooks() -> serde_json::Value {
    use crate::domain::EventType;
    use serde_json::json;
    let header = |name: &str, description: &str| {
        json!({"name": name, "in": "header", "required": true, "description": description,
               "schema": {"type": "string"}})
    };
    let mut out = serde_json::Map::new();
    for event in EventType::ALL {
        let entity = event.entity_type();
        let seen_with = entity
            .view_permission()
            .filter(|_| *event != EventType::WebhookTest)
            .map(|p| {
                format!(
                    " `GET /v1/events` shows it to keys holding `{}`.",
                    p.as_str()
                )
            })
            .unwrap_or_default();
        let kind = match event.action() {
            Some(_) => "An entity change",
            None => "A domain event",
        };
        out.insert(
            event.as_str().to_owned(),
            json!({"post": {
                "summary": event.description(),
                "description": format!(
                    "{kind}; `data.entities` holds the `{entity}` it concerns.{seen_with} {}",
                    recipients(*event)
                ),
                "operationId": format!("webhook_{}", event.as_str().replace('.', "_")),
                "tags": ["Webhooks"],
                "parameters": [
                    header("webhook-id", "The event id: the same on every attempt; dedupe on it."),
                    header("webhook-timestamp", "Seconds since the epoch, of this attempt."),
                    header("webhook-signature", "`v1,<base64 HMAC-SHA256 of \"{id}.{timestamp}.{body}\">` (two, space-separated, while a rotated secret overlaps)."),
                ],
                "requestBody": {"required": true, "content": {"application/json": {
                    "schema": message_schema(*event)}}},
                "responses": {"2XX": {"description": "Received. Anything else (or no answer within 15 s) is retried; `410` disables the endpoint."}}
            }}),
        );
    }
    serde_json::Value::Object(out)
}

/// Which endpoints get an event.
fn recipients(event: crate::domain::EventType) -> String {
    if event == crate::domain::EventType::WebhookTest {
        "Sent only to the endpoint it is asked for (`POST /v1/webhooks/{id}/test`), whatever its \
         `eventTypes`; its `sequence` is 0 and `GET /v1/events` does not list it."
            .to_owned()
    } else {
        format!(
            "Sent to endpoints whose `eventTypes` are empty, name it, or name `{}.*`.",
            event.namespace()
        )
    }
}

/// A `WebhookMessage` of one event type.
fn message_schema(event: crate::domain::EventType) -> serde_json::Value {
    use serde_json::json;
    let entity = event.entity_type();
    let mut data = json!({"type": "object", "properties": {
        "type": {"const": event.as_str()},
        "entityType": {"const": entity.as_str()},
    }});
    if let Some(schema) = event.payload_schema() {
        data["properties"]["entities"] = json!({"type": "object", "additionalProperties": {
            "$ref": format!("#/components/schemas/{schema}")}});
    }
    json!({"allOf": [
        {"$ref": "#/components/schemas/WebhookMessage"},
        {"type": "object", "properties": {"type": {"const": event.as_str()}, "data": data}},
    ]})
}
