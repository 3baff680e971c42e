//! Typed requests and notifications, in the spirit of `lsp-types`: the method
//! name and the shapes of params and result live in one type.
//!
//! ```
//! use jsonrpc_stdio::Request;
//! use serde::{Deserialize, Serialize};
//!
//! /// `initialize`, as codex's app-server takes it.
//! enum Initialize {}
//!
//! #[derive(Serialize)]
//! #[serde(rename_all = "camelCase")]
//! struct InitializeParams { client_info: ClientInfo }
//! #[derive(Serialize)]
//! struct ClientInfo { name: String, version: String }
//! #[derive(Deserialize)]
//! #[serde(rename_all = "camelCase")]
//! struct InitializeResult { user_agent: String }
//!
//! impl Request for Initialize {
//!     const METHOD: &'static str = "initialize";
//!     type Params = InitializeParams;
//!     type Result = InitializeResult;
//! }
//! // let result = client.call::<Initialize>(params).await?;
//! ```

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A request type: its method, params and result.
pub trait Request {
    /// The method name on the wire.
    const METHOD: &'static str;
    /// What is sent as `params`.
    type Params: Serialize;
    /// What `result` decodes to.
    type Result: DeserializeOwned;
}

/// A notification type: its method and params.
pub trait Notification {
    /// The method name on the wire.
    const METHOD: &'static str;
    /// What is sent as `params`.
    type Params: Serialize;
}
