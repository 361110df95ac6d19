//! The OpenAPI 3.1 document, built from the same route configuration the server mounts, then
//! finished here: the bearer scheme, the problem answers every operation can give, and the
//! `webhooks` section: one message per audit action, generated from the `AuditChange`
//! schema (`service::audit::Change`), so that it lists exactly what can be delivered.

use actix_web::http::Method;
use actix_web::App;
use utoipa::openapi::content::Content;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as OpenApiDoc, Ref, RefOr, Response};
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;

use crate::error::{ErrorCode, FieldError, ProblemDocument, PROBLEM_CONTENT_TYPE};
use crate::service::audit::Change;
use crate::service::webhooks::payload::{EventData, PingData};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Postier",
        description = "Management API of a hosted-mail provider: accounts and organizations, mail \
services and domains, mail addresses, their users and permissions, invitations, share links, \
bulk imports and sending limits. Errors are RFC 9457 problem documents with a stable `code`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    servers((url = "/", description = "The server that serves this document (`/openapi.json`)")),
    components(schemas(ProblemDocument, ErrorCode, FieldError, Change, EventData, PingData)),
    tags(
        (name = "operations", description = "Health and readiness"),
        (name = "accounts", description = "Sign-up and the caller's account"),
        (name = "sessions", description = "Log in, refresh, step-up, log out"),
        (name = "api-tokens", description = "Personal API tokens for scripts: scoped, optionally limited to one organization, expiring"),
        (name = "organizations", description = "Organizations, members and the audit log"),
        (name = "mail-services", description = "Mail services, packs, domains and DNS"),
        (name = "addresses", description = "Mail addresses, passwords and bulk import"),
        (name = "sharing", description = "Users of an address, invitations and share links"),
        (name = "mail-clients", description = "Device passwords, mailbox tokens (webmail), Outlook autodiscover and Apple profiles"),
        (name = "webhooks", description = "Webhook endpoints, their deliveries and attempts; the messages are in `webhooks`"),
    )
)]
pub struct ApiDoc;

pub const BEARER: &str = "bearer";

/// The complete document, as served at `/openapi.json` and printed by `postier openapi`.
pub fn build() -> OpenApiDoc {
    let (_, api) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(crate::routes::configure)
        .split_for_parts();
    finish(api)
}

/// The document as this server serves it: the configured password minimum instead of the
/// default one (`postier openapi` and the committed document state the default).
pub fn for_config(config: &crate::config::Config) -> OpenApiDoc {
    let mut api = build();
    if let Some(RefOr::T(utoipa::openapi::schema::Schema::Object(password))) = api
        .components
        .as_mut()
        .and_then(|c| c.schemas.get_mut("NewPassword"))
    {
        password.min_length = Some(config.password_min_length);
    }
    api
}

fn finish(mut api: OpenApiDoc) -> OpenApiDoc {
    let components = api.components.get_or_insert_with(Default::default);
    components.security_schemes.insert(
        BEARER.into(),
        RefOr::T(SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some("An access token from POST /v1/sessions"))
                .build(),
        )),
    );
    for item in api.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            add_problem_responses(operation);
            // Every operation has a description; a summary that says it all is repeated.
            if operation
                .description
                .as_deref()
                .unwrap_or_default()
                .is_empty()
            {
                operation.description = operation.summary.clone();
            }
        }
    }
    crate::idempotency::document(&mut api);
    crate::etag::document(&mut api);
    api.webhooks = webhook_messages();
    require_per_purpose(&mut api);
    name_audit_details(&mut api);
    type_event_details(&mut api);
    forbid_nul_characters(&mut api);
    add_examples(&mut api);
    api
}

/// No text holds a NUL character (PostgreSQL cannot store one, so the server refuses it with a
/// 422 naming the field): stated on every free string of the document but the problems'.
const NO_NUL: &str = "^[^\\u0000]*$";

/// Patterns that any ordinary text matches, so an example built from the schema may ignore
/// them (the control-character rule of names and subjects, and [`NO_NUL`]).
const TEXT_PATTERNS: &[&str] = &[NO_NUL, "^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]*$"];

fn forbid_nul_characters(api: &mut OpenApiDoc) {
    if let Some(components) = api.components.as_mut() {
        // Problems echo what was refused (a field name holding a NUL, say): not these.
        for (name, schema) in components.schemas.iter_mut() {
            if !matches!(name.as_str(), "Problem" | "FieldError") {
                forbid_nul(schema);
            }
        }
    }
    for item in api.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            for parameter in operation.parameters.iter_mut().flatten() {
                if let RefOr::T(parameter) = parameter {
                    parameter.schema.iter_mut().for_each(forbid_nul);
                }
            }
            if let Some(RefOr::T(body)) = operation.request_body.as_mut() {
                for content in body.content.values_mut() {
                    if let RefOr::T(content) = content {
                        content.schema.iter_mut().for_each(forbid_nul);
                    }
                }
            }
        }
    }
}

fn forbid_nul(schema: &mut RefOr<utoipa::openapi::schema::Schema>) {
    use utoipa::openapi::schema::{ArrayItems, Schema, SchemaType, Type};
    let RefOr::T(schema) = schema else { return };
    match schema {
        Schema::Object(object) => {
            let text = match &object.schema_type {
                SchemaType::Type(Type::String) => true,
                SchemaType::Array(types) => types.contains(&Type::String),
                _ => false,
            };
            if text
                && object.pattern.is_none()
                && object.format.is_none()
                && object.enum_values.is_none()
            {
                object.pattern = Some(NO_NUL.to_string());
            }
            object.properties.values_mut().for_each(forbid_nul);
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                forbid_nul(items);
            }
        }
        Schema::OneOf(one) => one.items.iter_mut().for_each(forbid_nul),
        Schema::AllOf(all) => all.items.iter_mut().for_each(forbid_nul),
        Schema::AnyOf(any) => any.items.iter_mut().for_each(forbid_nul),
        _ => {}
    }
}

/// An example on every request body, every JSON answer and every parameter that has none:
/// built from the schema (its own `examples` first, then the first enum value or branch, the
/// bounds, the format), so it is valid against it (CI checks every example with jsonschema:
/// `.ci/check_examples.py`). Bodies whose rules depend on each other carry their own.
fn add_examples(api: &mut OpenApiDoc) {
    use serde_json::Value;
    let components = api
        .components
        .as_ref()
        .and_then(|c| serde_json::to_value(&c.schemas).ok())
        .unwrap_or(Value::Null);
    // Requests carry their required members only (optional ones can depend on each other);
    // answers carry every member.
    let example_of = |schema: &Option<RefOr<utoipa::openapi::schema::Schema>>, full: bool| {
        schema
            .as_ref()
            .and_then(|s| serde_json::to_value(s).ok())
            .and_then(|s| synthesize(&s, &components, full, 0))
    };
    for item in api.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            if let Some(RefOr::T(body)) = operation.request_body.as_mut() {
                for (media_type, content) in &mut body.content {
                    if let RefOr::T(content) = content {
                        if media_type.ends_with("json") && content.example.is_none() {
                            content.example = example_of(&content.schema, false);
                        }
                    }
                }
            }
            for response in operation.responses.responses.values_mut() {
                let RefOr::T(response) = response else {
                    continue;
                };
                for (media_type, content) in &mut response.content {
                    if let RefOr::T(content) = content {
                        if media_type.ends_with("json") && content.example.is_none() {
                            content.example = example_of(&content.schema, true);
                        }
                    }
                }
            }
            for parameter in operation.parameters.iter_mut().flatten() {
                let RefOr::T(parameter) = parameter else {
                    continue;
                };
                if let Some(RefOr::T(utoipa::openapi::schema::Schema::Object(schema))) =
                    parameter.schema.as_mut()
                {
                    if schema.examples.is_empty() {
                        let value = serde_json::to_value(&schema).ok();
                        if let Some(example) =
                            value.and_then(|v| synthesize(&v, &components, false, 0))
                        {
                            schema.examples = vec![example];
                        }
                    }
                }
            }
        }
    }
}

/// A value valid against `schema` (a JSON Schema as the document renders it), `$ref`s
/// resolved in `components`, with every member of objects when `full` (else the required
/// ones); `None` when it cannot tell (a deep or unsatisfiable schema).
fn synthesize(
    schema: &serde_json::Value,
    components: &serde_json::Value,
    full: bool,
    depth: usize,
) -> Option<serde_json::Value> {
    use serde_json::{json, Map, Value};
    if depth > 12 {
        return None;
    }
    let next = |s: &Value| synthesize(s, components, full, depth + 1);
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.strip_prefix("#/components/schemas/")?;
        return next(&components[name]);
    }
    if let Some(example) = schema["examples"].as_array().and_then(|e| e.first()) {
        return Some(example.clone());
    }
    if !schema["example"].is_null() {
        return Some(schema["example"].clone());
    }
    if let Some(value) = schema.get("const") {
        return Some(value.clone());
    }
    if let Some(values) = schema["enum"].as_array() {
        return values.iter().find(|v| !v.is_null()).cloned();
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(branches) = schema[key].as_array() {
            let branch = branches
                .iter()
                .find(|b| b["type"] != "null")
                .or(branches.first())?;
            return next(branch);
        }
    }
    if let Some(parts) = schema["allOf"].as_array() {
        if schema.get("properties").is_none() {
            let mut merged = Map::new();
            for part in parts {
                match next(part)? {
                    Value::Object(fields) => merged.extend(fields),
                    other if parts.len() == 1 => return Some(other),
                    _ => return None,
                }
            }
            return Some(Value::Object(merged));
        }
    }
    let kind = match &schema["type"] {
        Value::String(kind) => kind.as_str(),
        Value::Array(kinds) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|k| *k != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => return Some(json!({})),
    };
    let bound = |key: &str| schema[key].as_i64();
    Some(match kind {
        "null" => Value::Null,
        "boolean" => json!(true),
        "integer" | "number" => {
            let low = bound("minimum").unwrap_or(1);
            json!(bound("maximum").map_or(low, |high| low.min(high)))
        }
        "string" => json!(match schema["format"].as_str() {
            Some("uuid") => "0193a1f2-7c4d-7e5f-8a6b-9c0d1e2f3a4b".to_string(),
            Some("date-time") => "2026-12-02T09:30:00Z".to_string(),
            Some("date") => "2026-12-02".to_string(),
            Some("email") => "famille.munster@la-fibre.xyz".to_string(),
            Some("password") => "violet umbrella marching north".to_string(),
            Some("uri") => "https://postier.example/".to_string(),
            _ if schema["pattern"]
                .as_str()
                .is_some_and(|p| !TEXT_PATTERNS.contains(&p)) =>
            {
                return None;
            }
            _ => {
                let min = schema["minLength"].as_u64().unwrap_or(1) as usize;
                let text = "example".to_string();
                if text.len() < min {
                    "x".repeat(min)
                } else {
                    let max = schema["maxLength"]
                        .as_u64()
                        .map_or(text.len(), |m| m as usize);
                    text.chars().take(max.max(min)).collect()
                }
            }
        }),
        "array" => {
            let count = schema["minItems"].as_u64().unwrap_or(1);
            match next(&schema["items"]) {
                Some(item) if count <= 1 => json!([item]),
                Some(item) if schema["uniqueItems"] != true => json!(vec![item; count as usize]),
                Some(_) => return None,
                None if count == 0 => json!([]),
                None => return None,
            }
        }
        _ => {
            let mut object = Map::new();
            if let Some(properties) = schema["properties"].as_object() {
                for (name, property) in properties {
                    let required = schema["required"]
                        .as_array()
                        .is_some_and(|r| r.iter().any(|n| n == name));
                    if !(required || full) {
                        continue;
                    }
                    match next(property) {
                        Some(value) => {
                            object.insert(name.clone(), value);
                        }
                        None if required => return None,
                        None => {}
                    }
                }
            }
            Value::Object(object)
        }
    })
}

/// Each audit action's `details` as a component of its own (`AccountUpdatedDetails`…), and
/// each branch titled by its action: client generators name models after them instead of
/// numbering inline objects (openapi-python-client gives up on the numbered ones).
fn name_audit_details(api: &mut OpenApiDoc) {
    use utoipa::openapi::schema::Schema;
    let Some(schemas) = api.components.as_mut().map(|c| &mut c.schemas) else {
        return;
    };
    let Some(RefOr::T(Schema::OneOf(change))) = schemas.get_mut("AuditChange") else {
        return;
    };
    let mut hoisted = Vec::new();
    for branch in &mut change.items {
        let RefOr::T(Schema::Object(branch)) = branch else {
            continue;
        };
        let action = match branch.properties.get("action") {
            Some(RefOr::T(Schema::Object(action))) => action
                .enum_values
                .as_ref()
                .and_then(|values| values.first())
                .and_then(|value| value.as_str())
                .map(str::to_string),
            _ => None,
        };
        let Some(action) = action else { continue };
        let title: String = action
            .split(['.', '_'])
            .map(|word| {
                let mut chars = word.chars();
                chars
                    .next()
                    .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            })
            .collect();
        branch.title = Some(title.clone());
        if let Some(details) = branch.properties.get_mut("details") {
            if matches!(details, RefOr::T(Schema::Object(_))) {
                let name = format!("{title}Details");
                let schema = std::mem::replace(details, RefOr::Ref(Ref::from_schema_name(&name)));
                hoisted.push((name, schema));
            }
        }
    }
    for (name, schema) in hoisted {
        schemas.entry(name).or_insert(schema);
    }
}

/// What `action` fixes of an event's `details`, from the `AuditChange` branches: `action` is
/// one of their actions, and per action `details` is that branch's details schema (`null`
/// for the branches without one), as `if`/`then` rules. An event is one object whose two
/// fields the derive types separately; `allOf` of the object and the `oneOf` would say the
/// same, but generated clients (openapi-python-client) cannot take an `allOf` of a `oneOf`.
fn type_event_details(api: &mut OpenApiDoc) {
    use serde_json::{json, Value};
    let Some(schemas) = api.components.as_mut().map(|c| &mut c.schemas) else {
        return;
    };
    let Some(change) = schemas
        .get("AuditChange")
        .and_then(|s| serde_json::to_value(s).ok())
    else {
        return;
    };
    let mut actions = Vec::new();
    let mut rules = Vec::new();
    for branch in change["oneOf"].as_array().into_iter().flatten() {
        let Some(action) = branch["properties"]["action"]["enum"][0].as_str() else {
            continue;
        };
        let details = match branch["properties"].get("details") {
            Some(details) => details.clone(),
            None => json!({ "type": "null" }),
        };
        actions.push(Value::from(action));
        rules.push(json!({
            "if": { "properties": { "action": { "const": action } }, "required": ["action"] },
            "then": { "properties": { "details": details } }
        }));
    }
    let Some(RefOr::T(utoipa::openapi::schema::Schema::Object(event))) =
        schemas.get_mut("EventResponse")
    else {
        return;
    };
    if let Some(RefOr::T(utoipa::openapi::schema::Schema::Object(action))) =
        event.properties.get_mut("action")
    {
        action.enum_values = Some(actions);
    }
    // utoipa's object has no `if`/`then`; its extensions serialize flattened, as siblings.
    event
        .extensions
        .get_or_insert_with(Default::default)
        .insert("allOf".into(), Value::Array(rules));
}

/// What `for` requires of an address creation, as JSON Schema `if`/`then` (the request type
/// is one struct for all three, so the derive cannot say it): `me` and `several_users` need
/// a `password` and take no invitee, permissions or binding; `other_user` needs an `invitee`.
fn require_per_purpose(api: &mut OpenApiDoc) {
    use serde_json::json;
    let Some(schemas) = api.components.as_mut().map(|c| &mut c.schemas) else {
        return;
    };
    let Some(RefOr::T(utoipa::openapi::schema::Schema::Object(schema))) =
        schemas.get_mut("CreateAddressRequest")
    else {
        return;
    };
    let purpose = |values: &[&str]| json!({ "properties": { "for": { "enum": values } }, "required": ["for"] });
    let rules = json!([
        {
            "if": purpose(&["me", "several_users"]),
            "then": {
                "required": ["password"],
                "properties": {
                    "password": { "$ref": "#/components/schemas/NewPassword" },
                    "invitee": { "type": "null" },
                    "permissions": { "type": "null" },
                    "account_binding": { "type": "null" }
                }
            }
        },
        {
            "if": purpose(&["other_user"]),
            "then": {
                "required": ["invitee"],
                "properties": { "invitee": { "$ref": "#/components/schemas/InviteeRequest" } }
            }
        }
    ]);
    // utoipa's object has no `if`/`then`; its extensions serialize flattened, as siblings.
    schema
        .extensions
        .get_or_insert_with(Default::default)
        .insert("allOf".into(), rules);
}

/// One webhook per message type: the body (`{type, timestamp, data}` with that type's
/// `details`), the Standard Webhooks headers, and what the answer means.
fn webhook_messages() -> Option<utoipa::openapi::Paths> {
    use serde_json::{json, Value};
    let change = serde_json::to_value(<Change as utoipa::PartialSchema>::schema()).ok()?;
    let mut messages = vec![(
        crate::repo::webhooks::PING.to_string(),
        "The test message of `POST /v1/webhooks/{webhook_id}/ping`.".to_string(),
        json!({ "$ref": "#/components/schemas/WebhookPingData" }),
    )];
    for branch in change["oneOf"].as_array()? {
        let name = branch["properties"]["action"]["enum"][0]
            .as_str()?
            .to_string();
        let details = match branch["properties"].get("details") {
            Some(details) => details.clone(),
            None => json!({ "type": "null" }),
        };
        let description = branch["description"]
            .as_str()
            .map(|d| format!("{d}\n\n"))
            .unwrap_or_default();
        messages.push((
            name.clone(),
            format!("{description}Sent when the organization's audit log records `{name}`."),
            json!({
                "allOf": [
                    { "$ref": "#/components/schemas/WebhookEventData" },
                    { "type": "object", "properties": { "details": details } }
                ]
            }),
        ));
    }
    let header = |name: &str, description: &str| json!({ "name": name, "in": "header", "required": true, "description": description, "schema": { "type": "string" } });
    let mut paths = serde_json::Map::new();
    for (name, description, data) in messages {
        let body = json!({
            "type": "object",
            "required": ["type", "timestamp", "data"],
            "properties": {
                "type": { "type": "string", "enum": [name] },
                "timestamp": { "type": "string", "format": "date-time", "description": "When the change happened" },
                "data": data
            }
        });
        let operation: Value = json!({
            "summary": name,
            "description": description,
            "operationId": format!("webhook_{}", name.replace('.', "_")),
            "tags": ["webhooks"],
            "parameters": [
                header("webhook-id", "The message id: the same for every retry and redelivery (the audit event's id), for dropping duplicates"),
                header("webhook-timestamp", "Unix seconds of this attempt; refuse messages far from now"),
                header("webhook-signature", "`v1,` + base64 HMAC-SHA256, keyed by the secret's bytes (after `whsec_`), of `{webhook-id}.{webhook-timestamp}.{body}`; space-separated when a rotated secret is in its grace period (accept any match)"),
            ],
            "requestBody": { "required": true, "content": { "application/json": { "schema": body } } },
            "responses": {
                "2XX": { "description": "Received; any other answer, or none within the time limit, is retried" }
            }
        });
        paths.insert(name, json!({ "post": operation }));
    }
    serde_json::from_value(Value::Object(paths)).ok()
}

/// Documents the problem answers that follow from an operation's shape, so that clients
/// (and Schemathesis) know every status it can give.
fn add_problem_responses(operation: &mut Operation) {
    let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    let params = operation.parameters.as_deref().unwrap_or_default();
    let located = |place: fn(&ParameterIn) -> bool| {
        params
            .iter()
            .any(|p| matches!(p, RefOr::T(p) if place(&p.parameter_in)))
    };
    let has_path = located(|p| matches!(p, ParameterIn::Path));
    let has_query = located(|p| matches!(p, ParameterIn::Query));
    let mut add = |status: &str, description: &str| {
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| problem_response(description));
    };
    if secured {
        add(
            "401",
            "Missing, invalid or expired access token, or ended session",
        );
    }
    if has_path {
        add("404", "Not found, or not visible to the caller");
    }
    if has_query {
        add("422", "Invalid query parameter");
    }
    if operation.request_body.is_some() {
        add("400", "Malformed body");
        add("413", "Body too large");
        add("415", "Unsupported media type");
        add("422", "Invalid body");
    }
    add("500", "Unexpected error (the cause is logged, never shown)");
    add_bearer_challenge(operation);
}

/// Every 401 carries `WWW-Authenticate` (RFC 6750), as `error::ApiError` renders it.
fn add_bearer_challenge(operation: &mut Operation) {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::{ObjectBuilder, Type};
    if let Some(RefOr::T(response)) = operation.responses.responses.get_mut("401") {
        response
            .headers
            .entry("WWW-Authenticate".to_string())
            .or_insert_with(|| {
                RefOr::T(
                    HeaderBuilder::new()
                        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                        .description(Some(
                            "`Bearer realm=\"postier\"`, with `error=\"invalid_token\"` when a token was sent and refused",
                        ))
                        .build(),
                )
            });
    }
}

pub fn problem_response(description: &str) -> RefOr<Response> {
    RefOr::T(
        Response::builder()
            .description(description)
            .content(
                PROBLEM_CONTENT_TYPE,
                Content::new(Some(Ref::from_schema_name("Problem"))),
            )
            .build(),
    )
}

/// The paths and methods of the document, to tell 405 (known path, other method) from 404.
pub struct RouteTable(Vec<(actix_web::dev::ResourceDef, Vec<Method>)>);

impl RouteTable {
    pub fn new(api: &OpenApiDoc) -> Self {
        let mut routes = Vec::new();
        for (path, item) in &api.paths.paths {
            let methods = [
                (Method::GET, item.get.is_some()),
                (Method::POST, item.post.is_some()),
                (Method::PUT, item.put.is_some()),
                (Method::PATCH, item.patch.is_some()),
                (Method::DELETE, item.delete.is_some()),
            ]
            .into_iter()
            .filter_map(|(m, present)| present.then_some(m))
            .collect();
            routes.push((actix_web::dev::ResourceDef::new(path.as_str()), methods));
        }
        Self(routes)
    }

    /// The methods allowed on `path`, when some route has this path: those of the resource
    /// it names, the most specific of the routes matching it (the fewest parameters), so
    /// that `/v1/invitations/accept` is the accept resource alone, not also
    /// `/v1/invitations/{id}`.
    pub fn allowed(&self, path: &str) -> Option<Vec<Method>> {
        self.resource(path).map(|(_, methods)| methods)
    }

    /// The pattern of the resource `path` names, and its methods.
    pub fn resource(&self, path: &str) -> Option<(&str, Vec<Method>)> {
        let matching: Vec<_> = self
            .0
            .iter()
            .filter(|(def, _)| def.is_match(path))
            .map(|(def, methods)| (def.pattern().unwrap_or_default(), methods))
            .collect();
        let parameters = |pattern: &str| pattern.matches('{').count();
        let fewest = matching.iter().map(|(p, _)| parameters(p)).min()?;
        let mut named = matching
            .into_iter()
            .filter(|(p, _)| parameters(p) == fewest);
        let (pattern, methods) = named.next()?;
        let mut methods = methods.clone();
        for (_, more) in named {
            methods.extend(more.iter().cloned());
        }
        methods.dedup();
        Some((pattern, methods))
    }
}
