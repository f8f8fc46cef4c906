//! seckill's Lua purchase on the usual async stack: axum on tokio, one
//! multiplexed Redis connection, the same script (src/purchase/purchase.lua) and the
//! same answers, for `scripts/bench-references.sh`. It sets up its own
//! sale of STOCK at start, as seckill does, and prints no line per purchase.
//!   axum-lua ADDR REDIS_URL STOCK SUFFIX_MAX

use std::sync::Arc;

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use redis::Script;
use redis::aio::MultiplexedConnection;
use seckill_references::{new_sale, purchase};
use serde::Deserialize;
use serde_json::{Value, json};

struct Sale {
    redis: MultiplexedConnection,
    script: Script,
    id: String,
    suffix_max: u32,
}

#[derive(Deserialize)]
struct Buy {
    msg: String,
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |n: usize, default: &str| args.get(n).cloned().unwrap_or_else(|| default.into());
    let (addr, url) = (arg(1, "127.0.0.1:5200"), arg(2, "redis://127.0.0.1:6379/0"));
    let stock: u64 = arg(3, "500").parse().expect("STOCK");
    let suffix_max: u32 = arg(4, "100000").parse().expect("SUFFIX_MAX");
    let client = redis::Client::open(url).expect("REDIS_URL");
    let mut redis = client
        .get_multiplexed_async_connection()
        .await
        .expect("cannot reach Redis");
    let id = format!("reference-{}", fastrand::u32(..));
    new_sale(stock, &id)
        .exec_async(&mut redis)
        .await
        .expect("cannot set up the sale");
    let script = Script::new(include_str!("../../../src/purchase/purchase.lua"));
    let sale = Arc::new(Sale {
        redis,
        script,
        id,
        suffix_max,
    });
    let app = Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/seckill", post(buy))
        .with_state(sale);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .expect("cannot listen");
    println!("listening on {addr}");
    axum::serve(listener, app).await.expect("serving");
}

async fn buy(State(sale): State<Arc<Sale>>, Form(form): Form<Buy>) -> (StatusCode, Json<Value>) {
    let user_id = format!("{}{}", form.msg.trim(), fastrand::u32(0..=sale.suffix_max));
    let mut redis = sale.redis.clone();
    let reply: redis::RedisResult<Option<Vec<i64>>> = purchase(&sale.script, &user_id, &sale.id)
        .invoke_async(&mut redis)
        .await;
    match reply {
        Ok(Some(answer)) => {
            let code = answer.first().copied().unwrap_or(0);
            (
                StatusCode::OK,
                Json(json!({ "user_id": user_id, "response_num": code })),
            )
        }
        Ok(None) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": "no sale" })),
        ),
        Err(err) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": err.to_string() })),
        ),
    }
}
