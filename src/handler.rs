//! Answers one request. Python: the function `fun_send` and Flask's routing.

use std::io::{ErrorKind, Read};
use std::sync::Arc;

use redis::Connection;
use serde_json::json;
use tiny_http::{Request, ResponseBox};

use crate::form::{self, FormError, MAX_BODY_BYTES};
use crate::keys;
use crate::log::Log;
use crate::permits::Permits;
use crate::purchase::{SaleError, Strategy, TURN_WAIT};
use crate::redis_pool::{CheckoutError, Pool};
use crate::responses::{self, Cause};
use crate::routes::{Route, route};
use crate::sale::Tally;
use crate::static_files;
use crate::stats::Stats;

/// What every request thread shares.
pub struct App {
    pub pool: Pool,
    pub strategy: Strategy,
    pub retries: u32,
    pub suffix_max: u32,
    pub stats: Stats,
    pub log: Log,
    /// Turns to race, for a strategy that limits them (`watch-retry`).
    pub racers: Option<Arc<Permits>>,
}

/// Answers a request. A buyer who hung up cannot be told anything, so a
/// failed write is dropped.
pub fn handle(app: &App, mut request: Request) {
    let response = match route(request.method(), request.url()) {
        Route::ToPage => responses::redirect("/seckill"),
        // Python: if request.method == 'GET': return render_template('seckill.html')
        Route::Page => responses::file(static_files::page()),
        Route::Static(file) => responses::file(file),
        Route::Purchase => buy(app, &mut request),
        Route::Stats => stats(app),
        Route::Health => responses::json(200, &json!({ "status": "ok" })),
        Route::Ready => ready(app),
        Route::NotFound => responses::error(
            404,
            Cause::BadRequest,
            "no such page; the sale is at /seckill",
        ),
        Route::WrongMethod { allow } => responses::wrong_method(allow),
    };
    let _ = request.respond(response);
}

/// The POST branch of `fun_send`.
fn buy(app: &App, request: &mut Request) -> ResponseBox {
    let user_id = match user_id(request, app.suffix_max) {
        Ok(user_id) => user_id,
        Err(err) => {
            app.stats.failed();
            return responses::error(err.status(), err.cause(), err);
        }
    };
    // watch-retry: a turn to race first, before taking a Redis connection
    // that would sit idle meanwhile. The turn is held to the end of `buy`.
    let _turn = match app.racers.as_ref().map(|racers| racers.acquire(TURN_WAIT)) {
        Some(None) => {
            app.stats.failed();
            let what = "busy: no turn to buy came within a second; try again";
            return responses::error(503, Cause::Busy, what);
        }
        turn => turn,
    };
    match on_redis(app, |con| app.strategy.buy(con, &user_id, app.retries)) {
        Ok(outcome) => {
            app.stats.answered(outcome);
            app.log.answer(&user_id, outcome.answer);
            // Python: return jsonify(user_id=userid, response_num=...)
            let answer = json!({ "user_id": user_id, "response_num": outcome.answer.code() });
            responses::json(200, &answer)
        }
        Err(Trouble::MaybeSold(err)) => {
            app.stats.maybe_sold();
            app.log.maybe_sold(&user_id);
            let what = format!(
                "Redis did not confirm the purchase in time ({err}): it may have gone through; \
                 the winners printed when the sale ends will tell"
            );
            let answer =
                json!({ "user_id": user_id, "error": what, "cause": Cause::MaybeSold.name() });
            responses::json(503, &answer)
        }
        Err(trouble) => {
            app.stats.failed();
            trouble.response()
        }
    }
}

/// `/seckill/stats`: the sale as Redis holds it, and this server's counters.
fn stats(app: &App) -> ResponseBox {
    match on_redis(app, |con| Tally::read(con)?.ok_or(SaleError::NoSale)) {
        Ok(sale) => responses::json(200, &app.stats.to_json(app.strategy, &sale)),
        Err(trouble) => trouble.response(),
    }
}

/// `/readyz`: 200 when Redis answers and holds a sale, else 503.
fn ready(app: &App) -> ResponseBox {
    let sale = on_redis(app, |con| {
        let stock: bool = redis::cmd("EXISTS").arg(keys::STOCK).query(con)?;
        if stock {
            Ok(())
        } else {
            Err(SaleError::NoSale)
        }
    });
    match sale {
        Ok(()) => responses::json(200, &json!({ "status": "ready" })),
        Err(trouble) => trouble.response(),
    }
}

/// Why a request got no answer from Redis.
enum Trouble {
    /// No turn at a connection came in time: a crowd.
    Busy,
    /// Redis failed; the words say how.
    Redis(String),
    NoSale,
    /// The purchase was sent, its reply lost.
    MaybeSold(redis::RedisError),
}

impl Trouble {
    fn response(&self) -> ResponseBox {
        match self {
            Trouble::Busy => {
                let what =
                    "busy: a crowd is ahead and no turn at Redis came within a second; try again";
                responses::error(503, Cause::Busy, what)
            }
            Trouble::Redis(what) => responses::error(503, Cause::Redis, what),
            Trouble::NoSale => responses::error(503, Cause::NoSale, NO_SALE),
            Trouble::MaybeSold(err) => responses::error(503, Cause::MaybeSold, err),
        }
    }
}

const NO_SALE: &str =
    "no sale is set up in Redis (commodity:num is missing); restart seckill to start one";

/// Runs `work` on a pooled connection. Python: pyredis = redis.Redis(connection_pool=pool)
/// Redis failing is logged once per outage; a crowd is not.
fn on_redis<T>(
    app: &App,
    work: impl FnOnce(&mut Connection) -> Result<T, SaleError>,
) -> Result<T, Trouble> {
    let result = match app.pool.get() {
        Ok(mut con) => con.run(work),
        Err(CheckoutError::Busy) => return Err(Trouble::Busy),
        Err(CheckoutError::Redis(err)) => {
            let what = format!("no connection to Redis within a second: {err}");
            app.log.redis_failed(&what);
            return Err(Trouble::Redis(what));
        }
    };
    match result {
        Ok(value) => {
            app.log.redis_worked();
            Ok(value)
        }
        Err(SaleError::NoSale) => {
            app.log.no_sale(NO_SALE);
            Err(Trouble::NoSale)
        }
        Err(SaleError::Redis(err)) => {
            let what = if err.is_timeout() {
                format!("Redis did not answer in time; is it stalled or overloaded? ({err})")
            } else {
                format!("Redis failed: {err}")
            };
            app.log.redis_failed(&what);
            Err(Trouble::Redis(what))
        }
        Err(SaleError::MaybeSold(err)) => {
            app.log
                .redis_failed(&format!("Redis did not confirm a purchase: {err}"));
            Err(Trouble::MaybeSold(err))
        }
    }
}

/// The buyer's id from the form. Python: baseid = request.form.get('msg', ...).strip()
fn user_id(request: &mut Request, suffix_max: u32) -> Result<String, FormError> {
    let body = read_body(request)?;
    let base_id = form::base_id(header(request, "Content-Type"), &body)?;
    form::user_id(&base_id, suffix_max)
}

/// The body, read no further than the limit.
fn read_body(request: &mut Request) -> Result<Vec<u8>, FormError> {
    if request
        .body_length()
        .is_some_and(|len| len > MAX_BODY_BYTES)
    {
        return Err(FormError::TooLarge);
    }
    let mut body = Vec::new();
    let limit = MAX_BODY_BYTES as u64 + 1;
    match request.as_reader().take(limit).read_to_end(&mut body) {
        Ok(_) => Ok(body),
        Err(err) if err.kind() == ErrorKind::TimedOut => Err(FormError::TooSlow),
        Err(err) => Err(FormError::Unreadable(err.to_string())),
    }
}

fn header<'r>(request: &'r Request, name: &'static str) -> Option<&'r str> {
    let header = request.headers().iter().find(|h| h.field.equiv(name))?;
    Some(header.value.as_str())
}
