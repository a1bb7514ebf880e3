//! What every operation of the OpenAPI document shares, added in one place: the statuses the
//! common machinery (token check, role sets, extractors, load shedding) answers, and the rule
//! that path ids are positive integers. Each handler's annotation lists only what is its own
//! (201, 409, …); a status it already describes is left as it is.

use utoipa::openapi::content::Content;
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{Object, Schema, Type};
use utoipa::openapi::{OpenApi, Ref, RefOr, ResponseBuilder};

/// Adds the shared statuses to every operation of `doc` and bounds its path ids.
pub fn add_shared_responses(doc: &mut OpenApi) {
    for item in doc.paths.paths.values_mut() {
        if let Some(op) = &mut item.get {
            shared(op, false);
        }
        for op in [
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            shared(op, true);
        }
    }
}

fn shared(op: &mut Operation, writes: bool) {
    let has_body = op.request_body.is_some();
    let params = op.parameters.as_deref().unwrap_or_default();
    let has_query = params.iter().any(|p| p.parameter_in == ParameterIn::Query);
    let secured = op.security.is_some();

    if has_body || has_query {
        add(
            op,
            "400",
            error(if has_body {
                "Malformed: the body is not JSON (or not readable), or a query parameter is unknown or not of its type (`malformed_json`, `invalid_query`, …)"
            } else {
                "Malformed: a query parameter is unknown or not of its type (`invalid_query`, `invalid_limit`, `invalid_cursor`, …)"
            }),
        );
    }
    if secured {
        add(
            op,
            "401",
            error("No bearer token, or not one the service knows (`unauthenticated`)").header(
                "WWW-Authenticate",
                Header::new(Object::with_type(Type::String)),
            ),
        );
        add(
            op,
            "403",
            error("The caller's role may not do this (`forbidden`)"),
        );
    }
    add(op, "404", error("What the path names is not there, or outside the caller's scope, which answers the same (a segment that is not an id: `not_found`)"));
    if writes {
        add(op, "409", error("Does not fit what the service holds as it stands: the body names something that is not there (`unknown_student`, `unknown_invoice`, …), or it does not fit the balances, credit, what was issued or configured before, or the clock; or another request created the same record at once (`conflict`). The same request may succeed another time"));
    }
    if has_body {
        add(
            op,
            "413",
            error("The body is over the limit (`body_too_large`)"),
        );
        add(
            op,
            "415",
            error("Not the content type the operation takes (`unsupported_media_type`)"),
        );
    }
    if has_body || has_query {
        add(op, "422", error("Well-formed but invalid in itself, whatever the service holds: the `code` says which rule (`invalid_body` when the body does not fit the schema)"));
    }
    add(
        op,
        "500",
        error("Internal error; it is logged, and the body says no more (`internal`)"),
    );
    add(
        op,
        "503",
        error("The service is busy (too many requests in progress, or no database connection free): retry after the given seconds (`busy`)").header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Object::builder().schema_type(Type::Integer).minimum(Some(1)).build())
                .description(Some("Seconds to wait before retrying"))
                .build(),
        ),
    );

    // Ids are positive: the databases hand them out from 1.
    for p in op.parameters.iter_mut().flatten() {
        if p.parameter_in != ParameterIn::Path {
            continue;
        }
        if let Some(RefOr::T(Schema::Object(o))) = &mut p.schema {
            if o.schema_type == Type::Integer.into() && o.minimum.is_none() {
                o.minimum = Some(1.into());
            }
        }
    }
}

fn error(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        Content::new(Some(Ref::from_schema_name("ErrorBody"))),
    )
}

/// Adds `response` under `status` unless the operation describes that status itself; an
/// operation's own response left without words gets the shared ones.
fn add(op: &mut Operation, status: &str, response: ResponseBuilder) {
    let shared = response.build();
    match op.responses.responses.get_mut(status) {
        Some(RefOr::T(own)) if own.description.is_empty() => own.description = shared.description,
        Some(_) => {}
        None => {
            op.responses
                .responses
                .insert(status.to_string(), RefOr::T(shared));
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every `$ref` of the document names a schema it has: utoipa registers the schemas of
    /// bodies and responses, not those of parameters, which must therefore be inlined.
    #[test]
    fn every_reference_resolves() {
        let (_, doc) = crate::http::api();
        let text = serde_json::to_string(&doc).expect("document");
        let schemas = doc.components.expect("components").schemas;
        let prefix = "\"#/components/schemas/";
        let missing: Vec<&str> = text
            .match_indices(prefix)
            .map(|(at, _)| {
                let rest = &text[at + prefix.len()..];
                &rest[..rest.find('"').unwrap_or(rest.len())]
            })
            .filter(|name| !schemas.contains_key(*name))
            .collect();
        assert!(missing.is_empty(), "unresolved: {missing:?}");
    }

    /// Every operation lists the statuses the shared machinery answers.
    #[test]
    fn every_operation_lists_the_shared_statuses() {
        let (_, doc) = crate::http::api();
        for (path, item) in &doc.paths.paths {
            for op in [&item.get, &item.put, &item.post, &item.delete]
                .into_iter()
                .flatten()
            {
                let has = |s: &str| op.responses.responses.contains_key(s);
                assert!(["404", "500", "503"].iter().all(|s| has(s)), "{path}");
                // Only the parent link's page is open to anyone (its POST checks the token).
                assert!(
                    ["401", "403"].iter().all(|s| has(s)) || path.starts_with("/p/"),
                    "{path}"
                );
                if op.request_body.is_some() {
                    assert!(
                        ["400", "413", "415", "422"].iter().all(|s| has(s)),
                        "{path}"
                    );
                }
            }
        }
    }
}
