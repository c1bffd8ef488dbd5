//! # vanish-python: `vanish_client._engine`
//!
//! Vanish's engine inside a Python process: Django's embedded mode
//! (`vanish_client.django.embedded`) caches pages through it, with the proxy's rules
//! (RFC 9111 storability and freshness, `Vary`, the key policy, tags, selectors) because it
//! *is* the proxy's engine, over the same stores (memory, or Redis shared with proxies).
//!
//! ## The shape
//!
//! The `tower` Layer (`crates/tower`) drives the engine with the inner service as its origin;
//! here the Django view is the origin, but it must run in the request's own Python thread
//! (Django's thread-locals, database connections, the ASGI event loop), never in an engine
//! thread. So the exchange is turned inside out ([`exchange`]):
//!
//! ```text
//! cache.lookup(method, host, target, headers)   -> Response (a hit)  or  Miss
//! miss.store(status, headers, body, tags)       -> Response (what the client gets)
//! miss.skip(status)                             -> the view's response goes out uncached
//! cache.purge('{"type":"tag","tag":"news"}')    -> matched count
//! ```
//!
//! `lookup` runs `Cache::serve` (on the calling thread until the engine answers or asks its
//! origin, then in an engine task); a [`exchange::Render`] comes back when it asks. The engine keeps the whole decision: whether the response is
//! stored, for how long, under which variant and tags, and what the client is answered.
//! Every wait releases the GIL. The runtime and store start on first use in each process,
//! and anew after `fork()` ([`process`]).
//!
//! Modules: [`options`] (settings), [`store`] (memory or Redis), [`policy`] (the key
//! prefix), [`process`] (per-process runtime), [`exchange`] (one request); this file only
//! converts between Python and Rust values.

#![warn(missing_docs)]

pub mod exchange;
pub mod options;
pub mod policy;
pub mod process;
pub mod store;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use vanish_engine::{PurgeRequest, Store};

use crate::exchange::{Exchange, Next, Render};
use crate::options::{Options, StoreSettings};
use crate::policy::KeyPrefix;
use crate::process::Embedded;

pyo3::create_exception!(
    _engine,
    EngineError,
    PyException,
    "The embedded cache failed (store unreachable, engine stopped): serve the page uncached."
);

fn engine_error(e: String) -> PyErr {
    EngineError::new_err(e)
}

/// Bytes of a Latin-1 string (WSGI's header text); `None` if a character is beyond U+00FF.
fn latin1_bytes(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

fn header_pair(name: &str, value: &str) -> PyResult<(HeaderName, HeaderValue)> {
    let n = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| PyValueError::new_err(format!("invalid header name {name:?}")))?;
    let v = latin1_bytes(value)
        .and_then(|b| HeaderValue::from_bytes(&b).ok())
        .ok_or_else(|| PyValueError::new_err(format!("invalid value of header {name}")))?;
    Ok((n, v))
}

/// Tags as an RFC 8941 list of strings (`"a", "b"`), the `Cache-Groups` syntax the engine
/// reads; tags with characters outside printable ASCII are refused.
fn cache_groups(tags: &[String]) -> PyResult<Option<HeaderValue>> {
    let mut items = Vec::with_capacity(tags.len());
    for t in tags {
        if t.is_empty() || !t.chars().all(|c| (' '..='~').contains(&c)) {
            return Err(PyValueError::new_err(format!(
                "tag {t:?}: must be non-empty printable ASCII"
            )));
        }
        items.push(format!(
            "\"{}\"",
            t.replace('\\', "\\\\").replace('"', "\\\"")
        ));
    }
    if items.is_empty() {
        return Ok(None);
    }
    HeaderValue::from_str(&items.join(", "))
        .map(Some)
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

/// The engine's answer for the client: a hit, or the stored (or passed) response.
#[pyclass(module = "vanish_client._engine", frozen)]
pub struct Answer {
    /// Status code.
    #[pyo3(get)]
    status: u16,
    /// Header fields in order, as `(lower-case name, value)` pairs.
    #[pyo3(get)]
    headers: Vec<(String, String)>,
    body: Bytes,
}

#[pymethods]
impl Answer {
    /// The body.
    #[getter]
    fn body<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.body)
    }

    /// The `Cache-Status` field (`vanish; hit`, `vanish; fwd=miss; stored`, ...).
    #[getter]
    fn cache_status(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == "cache-status")
            .map(|(_, v)| v.as_str())
    }

    /// True when the engine answered from the cache without rendering.
    #[getter]
    fn hit(&self) -> bool {
        self.cache_status()
            .is_some_and(|s| s.split(';').any(|p| p.trim() == "hit"))
    }

    fn __repr__(&self) -> String {
        format!(
            "<Answer {} {}>",
            self.status,
            self.cache_status().unwrap_or("-")
        )
    }
}

/// The engine asks for the view's response: render it, then [`Miss::store`] (or
/// [`Miss::skip`]). Dropped unanswered, it tells the engine "not stored" (the requests
/// waiting for it render the page themselves).
#[pyclass(module = "vanish_client._engine", frozen)]
pub struct Miss {
    /// The method the engine asks with (`GET` for a `HEAD`'s fill).
    #[pyo3(get)]
    method: String,
    /// The request headers the engine sends the origin: its validators when it revalidates,
    /// without the client's conditionals and `Range` (the engine answers those itself).
    #[pyo3(get)]
    headers: Vec<(String, String)>,
    render: Mutex<Option<Render>>,
}

fn to_python(py: Python<'_>, next: Next) -> PyResult<Py<PyAny>> {
    match next {
        Next::Answer(a) => Ok(Bound::new(
            py,
            Answer {
                status: a.status,
                headers: a.headers,
                body: a.body,
            },
        )?
        .into_any()
        .unbind()),
        Next::Render(r) => Ok(Bound::new(
            py,
            Miss {
                method: r.method.clone(),
                headers: r.headers.clone(),
                render: Mutex::new(Some(r)),
            },
        )?
        .into_any()
        .unbind()),
    }
}

impl Miss {
    fn take(&self) -> PyResult<Render> {
        self.render
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| engine_error("this miss was already answered".into()))
    }
}

#[pymethods]
impl Miss {
    /// Hands the view's response to the engine; returns what the client gets (an `Answer`),
    /// or another `Miss` when the engine must ask again (rare: a `304` it cannot use).
    ///
    /// `headers` are the response's fields (`Set-Cookie` included: the engine never stores
    /// a response that sets one); `tags` are added to those its tag headers carry.
    #[pyo3(signature = (status, headers, body, tags = Vec::new()))]
    fn store(
        &self,
        py: Python<'_>,
        status: u16,
        headers: Vec<(String, String)>,
        body: &[u8],
        tags: Vec<String>,
    ) -> PyResult<Py<PyAny>> {
        let mut res = Response::new(Full::new(Bytes::copy_from_slice(body)));
        *res.status_mut() = StatusCode::from_u16(status)
            .map_err(|_| PyValueError::new_err(format!("invalid status {status}")))?;
        for (n, v) in &headers {
            let (n, v) = header_pair(n, v)?;
            res.headers_mut().append(n, v);
        }
        if let Some(groups) = cache_groups(&tags)? {
            res.headers_mut()
                .append(HeaderName::from_static("cache-groups"), groups);
        }
        let render = self.take()?;
        let next = py
            .detach(move || render.respond(res))
            .map_err(engine_error)?;
        to_python(py, next)
    }

    /// The page is not to be stored (a streamed response, a view that raised): the engine
    /// is told so (requests waiting for this render render it themselves), and the client
    /// gets the view's own response.
    #[pyo3(signature = (status = 500))]
    fn skip(&self, py: Python<'_>, status: u16) -> PyResult<()> {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let render = self.take()?;
        py.detach(move || render.skip(status)).map_err(engine_error)
    }

    fn __repr__(&self) -> String {
        format!("<Miss {}>", self.method)
    }
}

/// An embedded cache: the engine over the memory or the Redis store, started lazily in
/// each process (and again in a child after `fork()`).
#[pyclass(module = "vanish_client._engine", frozen)]
pub struct EmbeddedCache {
    embedded: Arc<Embedded>,
}

#[pymethods]
impl EmbeddedCache {
    /// Checks the options (JSON: `{"store": "memory" | "redis://...", "capacity": "64MiB",
    /// "max_object_size": ..., "max_variants": ..., "redis": {...}}`); starts nothing yet.
    #[new]
    fn new(options: &str) -> PyResult<Self> {
        let settings = Options::parse(options).map_err(PyValueError::new_err)?;
        Ok(EmbeddedCache {
            embedded: Arc::new(Embedded::new(settings)),
        })
    }

    /// `"memory"` or `"redis"`.
    #[getter]
    fn store_kind(&self) -> &'static str {
        match self.embedded.settings().store {
            StoreSettings::Memory { .. } => "memory",
            StoreSettings::Redis(_) => "redis",
        }
    }

    /// Starts this process's engine now (it starts on first use anyway); raises
    /// `EngineError` when the store cannot start.
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        let e = self.embedded.clone();
        py.detach(move || e.running().map(drop))
            .map_err(engine_error)
    }

    /// Serves a `GET`/`HEAD` from the cache: an `Answer` (a hit, or an answer the engine
    /// makes without the view), or a `Miss` to render.
    ///
    /// `authority` is the host the client named (`example.com:8080`), `target` the path
    /// and query as sent; `key_prefix` keeps this page apart from the same URL cached under
    /// another prefix (purges by URL, path, tag still match it).
    #[pyo3(signature = (method, authority, target, headers, key_prefix = None))]
    fn lookup(
        &self,
        py: Python<'_>,
        method: &str,
        authority: &str,
        target: &str,
        headers: Vec<(String, String)>,
        key_prefix: Option<String>,
    ) -> PyResult<Py<PyAny>> {
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| PyValueError::new_err(format!("invalid method {method:?}")))?;
        let mut req = Request::new(());
        *req.method_mut() = method;
        *req.uri_mut() = target
            .parse()
            .map_err(|e| PyValueError::new_err(format!("invalid target {target:?}: {e}")))?;
        let h = req.headers_mut();
        for (n, v) in &headers {
            let (n, v) = header_pair(n, v)?;
            h.append(n, v);
        }
        let host = HeaderValue::from_str(authority)
            .map_err(|_| PyValueError::new_err(format!("invalid authority {authority:?}")))?;
        h.insert(http::header::HOST, host);
        if let Some(p) = key_prefix.filter(|p| !p.is_empty()) {
            req.extensions_mut().insert(KeyPrefix(p.into()));
        }
        let (parts, ()) = req.into_parts();
        let embedded = self.embedded.clone();
        let next = py
            .detach(move || {
                let running = embedded.running()?;
                Exchange::serve(running, parts)
            })
            .map_err(engine_error)?;
        to_python(py, next)
    }

    /// Runs a purge given as the admin API takes it (`{"selectors":[...], "mode": ...,
    /// "dry_run": ...}`, one bare selector, or the IETF draft form); returns how many
    /// objects matched. Raises `ValueError` for an invalid purge, `EngineError` when the
    /// store could not purge (nothing may then be assumed purged).
    fn purge(&self, py: Python<'_>, request: &str) -> PyResult<u64> {
        let req = PurgeRequest::from_json(request.as_bytes()).map_err(|e| {
            if e.field.is_empty() {
                PyValueError::new_err(e.message.clone())
            } else {
                PyValueError::new_err(format!("{}: {}", e.field, e.message))
            }
        })?;
        let embedded = self.embedded.clone();
        py.detach(move || {
            let running = embedded.running()?;
            let invalidator = running.cache().invalidator();
            running
                .block_on(invalidator.run(req))
                .map(|r| r.matched)
                .map_err(|e| e.to_string())
        })
        .map_err(engine_error)
    }

    /// Whether the store can serve and purge now (`None`), else raises `EngineError`.
    fn health(&self, py: Python<'_>) -> PyResult<()> {
        let embedded = self.embedded.clone();
        py.detach(move || {
            let running = embedded.running()?;
            running.cache().store().health().map_err(|e| e.to_string())
        })
        .map_err(engine_error)
    }

    /// The store's sizes: `objects`, `resources`, `bytes`, `capacity` (approximate).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let embedded = self.embedded.clone();
        let s = py
            .detach(move || embedded.running().map(|r| r.cache().store().stats()))
            .map_err(engine_error)?;
        let d = PyDict::new(py);
        d.set_item("objects", s.objects)?;
        d.set_item("resources", s.resources)?;
        d.set_item("bytes", s.bytes)?;
        d.set_item("capacity", s.capacity)?;
        Ok(d)
    }
}

/// The module `vanish_client._engine`.
#[pymodule]
fn _engine(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<EmbeddedCache>()?;
    m.add_class::<Answer>()?;
    m.add_class::<Miss>()?;
    m.add("EngineError", m.py().get_type::<EngineError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
