//! A blog behind `vanish_tower::CacheLayer`: a list page, post pages with per-language
//! variants, and an edit endpoint that purges exactly the pages that showed the post.
//!
//! Run it: `cargo run -p vanish-tower --example blog`, then
//! `curl -si localhost:3000/posts/1 -H 'Accept-Language: fr'` twice (a miss, then a hit), and
//! `curl -X POST localhost:3000/posts/1 -d 'New title'` to edit and purge.
//!
//! It listens on 127.0.0.1:3000 unless given another address, as its argument or in
//! `BLOG_ADDR` (`cargo run -p vanish-tower --example blog -- 127.0.0.1:0` takes a free port;
//! the address it got is printed).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use vanish_engine::{CacheConfig, Invalidator, Selector};
use vanish_memory::MemoryStore;
use vanish_tower::{CacheLayer, Tags};

/// The blog's state: posts by id, and the invalidator to purge after edits.
#[derive(Clone)]
pub struct Blog {
    posts: Arc<Mutex<BTreeMap<u32, String>>>,
    invalidator: Invalidator<MemoryStore>,
}

fn lang(headers: &HeaderMap) -> &'static str {
    match headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
    {
        Some(v) if v.starts_with("fr") => "fr",
        _ => "en",
    }
}

fn page(body: String, tags: Vec<String>) -> Response {
    let mut res = (
        [
            (header::CACHE_CONTROL, "public, s-maxage=300"),
            (header::VARY, "Accept-Language"),
        ],
        body,
    )
        .into_response();
    res.extensions_mut().insert(Tags(tags));
    res
}

async fn list(State(blog): State<Blog>, headers: HeaderMap) -> Response {
    let title = if lang(&headers) == "fr" {
        "Articles"
    } else {
        "Posts"
    };
    let posts = blog.posts.lock().unwrap().clone();
    let items: Vec<String> = posts.iter().map(|(id, t)| format!("{id}: {t}")).collect();
    let mut tags = vec!["post-list".to_owned()];
    tags.extend(posts.keys().map(|id| format!("post-{id}")));
    page(format!("{title}\n{}\n", items.join("\n")), tags)
}

async fn show(State(blog): State<Blog>, Path(id): Path<u32>, headers: HeaderMap) -> Response {
    let Some(title) = blog.posts.lock().unwrap().get(&id).cloned() else {
        return (StatusCode::NOT_FOUND, "no such post\n").into_response();
    };
    let greeting = if lang(&headers) == "fr" {
        "Article"
    } else {
        "Post"
    };
    page(
        format!("{greeting} {id}: {title}\n"),
        vec![format!("post-{id}")],
    )
}

async fn edit(State(blog): State<Blog>, Path(id): Path<u32>, body: String) -> Response {
    blog.posts
        .lock()
        .unwrap()
        .insert(id, body.trim().to_owned());
    // Every page that showed this post, in every language: its own page and the list.
    match blog
        .invalidator
        .purge(Selector::tag(&format!("post-{id}")))
        .await
    {
        Ok(report) => format!("saved; {} cached pages purged\n", report.matched).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("saved, purge failed: {e}\n"),
        )
            .into_response(),
    }
}

/// Builds the app: routes, state, and the cache layer in front of the routes.
pub fn app() -> Router {
    let layer = CacheLayer::new(MemoryStore::new(64 << 20), CacheConfig::default());
    let blog = Blog {
        posts: Arc::new(Mutex::new(BTreeMap::from([
            (1, "Hello".to_owned()),
            (2, "Caching".to_owned()),
        ]))),
        invalidator: layer.invalidator(),
    };
    Router::new()
        .route("/", get(list))
        .route("/posts/{id}", get(show).post(edit))
        .with_state(blog)
        .layer(layer)
}

/// Where to listen: the first argument, else `BLOG_ADDR`, else 127.0.0.1:3000.
#[allow(dead_code)]
fn listen_addr() -> String {
    std::env::args()
        .nth(1)
        .or_else(|| std::env::var("BLOG_ADDR").ok())
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned())
}

#[allow(dead_code)]
#[tokio::main]
async fn main() {
    let addr = listen_addr();
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .unwrap_or_else(|e| panic!("bind {addr}: {e} (pass another address, e.g. 127.0.0.1:0)"));
    let local = listener.local_addr().expect("local address");
    println!("blog on http://{local}");
    axum::serve(listener, app()).await.expect("serve");
}
