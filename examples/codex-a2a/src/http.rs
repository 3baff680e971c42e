//! HTTP (axum): the agent card, JSON-RPC for both A2A versions at one URL,
//! server-sent events for streams, bearer-token auth, and the body limit.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use codex_adapter::Health;

use crate::model::{Task, TaskState};
use crate::rpc::{self, RpcError};
use crate::service::Service;
use crate::wire::{self, v03, v1, Event, Method, Version};

/// Where the agent card is served (A2A 1.0 and 0.3).
pub const CARD_PATH: &str = "/.well-known/agent-card.json";
/// The card's path before 0.3 renamed it; still asked for by old clients.
pub const LEGACY_CARD_PATH: &str = "/.well-known/agent.json";

/// What the HTTP layer needs.
#[derive(Clone)]
pub struct AppState {
    /// The task service.
    pub service: Service,
    /// The agent card (JSON).
    pub card: Arc<Value>,
    /// The bearer token every request but the card needs, if any.
    pub token: Option<Arc<str>>,
    /// The body limit, for the 413 message.
    pub max_body: usize,
}

/// The agent card: 1.0's `supportedInterfaces` and 0.3's `url` /
/// `protocolVersion` / `preferredTransport`, both pointing at `url`.
pub fn agent_card(url: &str, with_token: bool) -> Value {
    let mut card = json!({
        "name": "codex-a2a",
        "description": "OpenAI codex as an A2A agent: each context is a codex thread that keeps \
                        its history; each message runs one codex turn. Commands and patches that \
                        need approval turn the task input-required: answer \"approve\" or \"decline\".",
        "version": env!("CARGO_PKG_VERSION"),
        "supportedInterfaces": [
            { "url": url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0" },
            { "url": url, "protocolBinding": "JSONRPC", "protocolVersion": "0.3" },
        ],
        "capabilities": { "streaming": true, "pushNotifications": false },
        "defaultInputModes": ["text/plain", "application/json"],
        "defaultOutputModes": ["text/plain"],
        "skills": [{
            "id": "codex",
            "name": "codex",
            "description": "Reads, writes and runs code in the service's working directory.",
            "tags": ["coding", "shell"],
            "examples": ["Explain what src/main.rs does", "Run the tests and fix what fails"],
        }],
        // A2A 0.3 reads these.
        "url": url,
        "protocolVersion": "0.3.0",
        "preferredTransport": "JSONRPC",
    });
    if with_token {
        card["securitySchemes"] = json!({ "bearer": {
            "httpAuthSecurityScheme": { "scheme": "Bearer" },
            // The 0.3 spelling of the same scheme.
            "type": "http", "scheme": "bearer",
        }});
        card["securityRequirements"] = json!([{ "schemes": { "bearer": { "list": [] } } }]);
        card["security"] = json!([{ "bearer": [] }]);
    }
    card
}

/// The routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", post(jsonrpc))
        .route(CARD_PATH, get(card))
        .route(LEGACY_CARD_PATH, get(card))
        .route("/health", get(health))
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .with_state(state)
}

async fn card(State(state): State<AppState>) -> Json<Value> {
    Json((*state.card).clone())
}

async fn health(State(state): State<AppState>) -> Json<Value> {
    let codex = state.service.codex();
    let counters = codex.counters();
    let unix = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    let health = match codex.health() {
        Health::Starting => json!({ "state": "starting" }),
        Health::Up { pid, since, .. } => json!({ "state": "up", "pid": pid, "since": unix(since) }),
        Health::Restarting {
            attempt,
            last_cause,
        } => {
            json!({ "state": "restarting", "attempt": attempt, "lastCause": last_cause })
        }
        Health::Unavailable { cause, until } => {
            json!({ "state": "unavailable", "cause": cause, "until": unix(until) })
        }
        Health::Closed => json!({ "state": "closed" }),
        other => json!({ "state": format!("{other:?}") }),
    };
    Json(json!({
        "codex": health,
        "codexPid": codex.pid(),
        "restarts": counters.restarts,
        "resumes": counters.resumes,
        "replacements": counters.replacements,
        "turnRetries": counters.turn_retries,
        "liveTasks": state.service.live_tasks(),
    }))
}

/// Every request but the card needs `Authorization: Bearer TOKEN` when a
/// token is set.
async fn auth(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(token) = &state.token else {
        return next.run(request).await;
    };
    let path = request.uri().path();
    if path == CARD_PATH || path == LEGACY_CARD_PATH {
        return next.run(request).await;
    }
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer realm=\"codex-a2a\"")],
        Json(json!({ "error": "this agent needs Authorization: Bearer <token> (see its card's securitySchemes)" })),
    )
        .into_response()
}

/// Compares without stopping at the first difference, so the time taken
/// does not tell how much of a guessed token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn json_response(body: Value) -> Response {
    Json(body).into_response()
}

/// Past the limit, a body is still read (and dropped) up to this many
/// times the limit, so the client gets to read the 413 instead of a reset
/// connection; beyond that the connection is closed.
const DRAIN_FACTOR: usize = 4;

/// Reads a body of at most `limit` bytes; past it, the 413 answer.
async fn read_body(body: Body, limit: usize) -> Result<Vec<u8>, Response> {
    let mut chunks = body.into_data_stream();
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = chunks.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                let e = RpcError::invalid_request(format!("cannot read the request body: {e}"));
                return Err(
                    (StatusCode::BAD_REQUEST, Json(rpc::error(&Value::Null, &e))).into_response(),
                );
            }
        };
        seen = seen.saturating_add(chunk.len());
        if seen <= limit {
            buf.extend_from_slice(&chunk);
        } else if seen > limit.saturating_mul(DRAIN_FACTOR) {
            break;
        }
    }
    if seen > limit {
        let e = RpcError::invalid_request(format!(
            "the request body is larger than this agent's limit of {limit} bytes (--max-body)"
        ));
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(rpc::error(&Value::Null, &e)),
        )
            .into_response());
    }
    Ok(buf)
}

async fn jsonrpc(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let body = match read_body(body, state.max_body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let request = match rpc::parse_request(&body) {
        Ok(r) => r,
        Err((id, e)) => return json_response(rpc::error(&id, &e)),
    };
    let id = request.id.clone();
    if let Some(v) = headers.get("a2a-version").and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        if !matches!(v, "" | "1" | "1.0" | "1.0.0" | "0.3" | "0.3.0") {
            return json_response(rpc::error(&id, &RpcError::version(v)));
        }
    }
    match dispatch(&state, request).await {
        Ok(Answer::Json(result)) => json_response(rpc::result(&id, result)),
        Ok(Answer::Stream {
            version,
            first,
            updates,
            through_input,
        }) => sse(id, version, *first, updates, through_input).into_response(),
        Err(e) => json_response(rpc::error(&id, &e)),
    }
}

enum Answer {
    Json(Value),
    Stream {
        version: Version,
        first: Box<Task>,
        updates: tokio::sync::broadcast::Receiver<Event>,
        /// Go on past input-required (to a terminal state).
        through_input: bool,
    },
}

async fn dispatch(state: &AppState, request: rpc::Request) -> Result<Answer, RpcError> {
    let Some((version, method)) = wire::method(&request.method) else {
        return Err(RpcError::method_not_found(&request.method));
    };
    let service = &state.service;
    let params = &request.params;
    match method {
        Method::Send | Method::Stream => {
            let send = match version {
                Version::V1 => v1::parse_send(params)?,
                Version::V03 => v03::parse_send(params)?,
            };
            let live = service.submit(&send).await?;
            if method == Method::Stream {
                let (first, updates) = live.subscribe();
                return Ok(Answer::Stream {
                    version,
                    first: Box::new(first),
                    updates,
                    through_input: false,
                });
            }
            if !send.return_immediately {
                live.settled().await;
            }
            let task = live.snapshot().with_history_length(send.history_length);
            Ok(Answer::Json(match version {
                Version::V1 => v1::send_result(&task),
                Version::V03 => version.task(&task),
            }))
        }
        Method::Get => {
            let q = wire::task_query(params)?;
            Ok(Answer::Json(
                version.task(&service.get(&q.id, q.history_length).await?),
            ))
        }
        Method::List => {
            let q = v1::parse_list(params)?;
            let (tasks, total, next) = service.list(&q).await?;
            Ok(Answer::Json(v1::list_result(
                &tasks,
                next,
                q.page_size,
                total,
            )))
        }
        Method::Cancel => {
            let q = wire::task_query(params)?;
            Ok(Answer::Json(version.task(&service.cancel(&q.id).await?)))
        }
        Method::Subscribe => {
            let q = wire::task_query(params)?;
            let live = service.subscribe(&q.id).await?;
            let (first, updates) = live.subscribe();
            // A 1.0 subscriber follows the task through input-required to
            // its end; 0.3 ends each stream at `final` (which input-required is).
            Ok(Answer::Stream {
                version,
                first: Box::new(first),
                updates,
                through_input: version == Version::V1,
            })
        }
        Method::PushConfig => Err(RpcError {
            code: rpc::code::PUSH_NOT_SUPPORTED,
            message: "Push notifications are not supported by this agent; stream or poll instead"
                .into(),
            data: None,
        }),
        Method::ExtendedCard => Err(RpcError {
            code: -32007,
            message: "This agent has no extended agent card; its public card says everything"
                .into(),
            data: None,
        }),
    }
}

/// The stream of a task: its snapshot, then each update, ending after the
/// update that finishes it or (unless `through_input`) asks for input.
fn sse(
    id: Value,
    version: Version,
    first: Task,
    updates: tokio::sync::broadcast::Receiver<Event>,
    through_input: bool,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let ends = move |state: TaskState| {
        if through_input {
            state.is_terminal()
        } else {
            state.is_settled()
        }
    };
    let first_event = Event::Task(first.clone());
    let state = (Some(first_event), updates, false, first.id.clone());
    let events = futures::stream::unfold(state, move |(pending, mut updates, done, task_id)| {
        let id = id.clone();
        async move {
            let event = match pending {
                Some(event) => event,
                None if done => return None,
                None => match updates.recv().await {
                    Ok(event) => event,
                    // Fell behind: end the stream rather than send a
                    // corrupted one; a resubscribe starts from a snapshot.
                    Err(RecvError::Lagged(_)) => {
                        tracing::warn!(task = %task_id, "a subscriber fell behind; ending its stream");
                        return None;
                    }
                    Err(RecvError::Closed) => return None,
                },
            };
            let last = match &event {
                Event::Task(t) => ends(t.status.state),
                Event::Status { status, .. } => ends(status.state),
                Event::Artifact { .. } => false,
            };
            let body = match version {
                Version::V1 => v1::event(&event),
                Version::V03 => v03::event(&event),
            };
            let data = rpc::result(&id, body).to_string();
            Some((
                Ok(SseEvent::default().data(data)),
                (None, updates, last, task_id),
            ))
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
