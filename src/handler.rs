//! Answers one request. Python: the function `fun_send`.

use std::io::{ErrorKind, Read};
use std::sync::Arc;
use std::time::Instant;

use redis::Connection;
use serde_json::json;
use tiny_http::{Request, ResponseBox};

use crate::beyond::replicas::Replicas;
use crate::form::{self, FormError, MAX_BODY_BYTES};
use crate::hosts::Hosts;
use crate::http::{self, Cause, Route};
use crate::opening::Opening;
use crate::orders::{Written, stream};
use crate::pool::Pool;
use crate::purchase::{self, Checkout};
use crate::report::Report;
use crate::sale::{Sale, Tally};
use crate::seller::{self, MARK_EVERY};
use crate::server::OpenCount;
use crate::stats::{Latency, Stats};
use crate::trouble::Trouble;

/// What every request thread shares.
pub struct App {
    pub pool: Pool,
    pub checkout: Checkout,
    /// The sale this server sells, and its name among the sellers.
    pub sale: Sale,
    pub replicas: Replicas,
    pub suffix_max: u32,
    pub report: Report,
    /// The names `Host` may hold (`--allowed-host`).
    pub hosts: Hosts,
    /// How long purchases took.
    pub latency: Latency,
    /// The client connections open now, once the server serves.
    pub connections: Arc<OpenCount>,
    /// The orders the writer counted in the database; none with `--orders off`.
    pub written: Option<Arc<Written>>,
}

/// Answers a request. A buyer who hung up cannot be told anything, so a
/// failed write is dropped.
pub fn handle(app: &App, mut request: Request) {
    let host = request.headers().iter().find(|h| h.field.equiv("Host"));
    if let Some(refused) = app.hosts.refusal(host.map(|h| h.value.as_str())) {
        let _ = request.respond(refused);
        return;
    }
    let response = match http::route(request.method(), request.url()) {
        Route::ToPage => http::redirect("/seckill"),
        // Python: if request.method == 'GET': return render_template('seckill.html')
        Route::Page => http::file(http::page()),
        Route::Static(file) => http::file(file),
        Route::Purchase => buy(app, &mut request),
        Route::Stats => match stats(app) {
            Ok(stats) => http::json(200, &stats),
            Err(trouble) => answer_trouble(&trouble, None),
        },
        // Prometheus's text format; a Redis that fails is a 503 here too.
        Route::Metrics => match stats(app) {
            Ok(stats) => http::metrics(stats.metrics(&app.latency)),
            Err(trouble) => answer_trouble(&trouble, None),
        },
        Route::Health => http::json(200, &json!({ "status": "ok" })),
        Route::Ready => ready(app),
        Route::NotFound => http::error(
            404,
            Cause::BadRequest,
            "no such page; the sale is at /seckill",
        ),
        Route::WrongMethod { allow } => http::wrong_method(allow),
    };
    let _ = request.respond(response);
}

/// The POST branch of `fun_send`.
fn buy(app: &App, request: &mut Request) -> ResponseBox {
    // Another site's page may make a visitor's browser post here: its form is not read.
    if let Some(refused) = http::cross_site_refusal(request) {
        app.report.refused();
        return refused;
    }
    let user_id = match user_id(request, app.suffix_max) {
        Ok(user_id) => user_id,
        Err(err) => {
            app.report.refused();
            return http::error(err.status, err.cause(), err);
        }
    };
    let asked = Instant::now();
    let bought = app.checkout.buy(&app.pool, &user_id);
    app.latency.record(asked.elapsed());
    app.report.purchase(&user_id, &bought);
    match bought {
        // Python: return jsonify(user_id=userid, response_num=...)
        Ok(outcome) => http::json(200, &outcome.answer.json(&user_id)),
        Err(trouble) => answer_trouble(&trouble, Some(&user_id)),
    }
}

/// The figures of `/seckill/stats` and `/metrics`: the sale as Redis holds
/// it, this server's counters, the opening, the orders (written, waiting,
/// the oldest's age, the dead letters), and the queue for Redis.
fn stats(app: &App) -> Result<Stats, Trouble> {
    let orders_on = app.written.is_some();
    let (sale, waiting) = on_redis(app, |con| {
        let tally = Tally::read(con)?.ok_or_else(|| Trouble::NoSale.no_sale_in(con))?;
        let waiting = orders_on.then(|| stream::waiting(con)).transpose()?;
        Ok((tally, waiting))
    })?;
    let opening = app.sale.opening.get();
    // As the writer last counted them: a request never waits on the
    // database. Null until a first count; the age says when it is stale.
    let counted = app.written.as_ref().and_then(|written| written.read());
    let (waiting_for_redis, longest) = app.pool.queue();
    Ok(Stats {
        strategy: app.checkout.strategy.name(),
        initial_stock: sale.initial,
        remaining: sale.remaining,
        winners: sale.winners,
        counts: app.report.counted(),
        opens_at: opening.as_ref().map(Opening::to_rfc3339),
        opens_in_ms: opening
            .as_ref()
            .and_then(Opening::wait)
            .map_or(0, |wait| wait.as_millis() as u64),
        orders_written: counted.map(|(count, _)| count),
        orders_counted_ms_ago: counted.map(|(_, age)| age.as_millis() as u64),
        orders_waiting: waiting.as_ref().map(|w| w.count),
        oldest_waiting_ms: waiting.as_ref().and_then(|w| w.oldest_ms),
        orders_dead: waiting.as_ref().map(|w| w.dead),
        waiting_for_redis,
        longest_wait_ms: longest.as_millis() as u64,
        redis_connections: app.pool.connections_open(),
        open_connections: app.connections.get(),
    })
}

/// `/readyz`: 200 when a purchase could be made and answered 1 now, else
/// the 503 a purchase would get.
fn ready(app: &App) -> ResponseBox {
    let orders = app.written.is_some();
    let strategy = app.checkout.strategy;
    let sale = on_redis(app, |con| {
        seller::ready(con, &app.sale, app.replicas)?;
        purchase::rights_kept(strategy, orders, app.replicas, con)
    });
    match sale {
        Ok(()) => http::json(200, &json!({ "status": "ready" })),
        Err(trouble) => answer_trouble(&trouble, None),
    }
}

/// Renews this server's mark on its sale, as `seller::Renewal` does each
/// second, and says when Redis refuses the pool more connections; false
/// once the sale was replaced, as there is nothing left to mark.
pub fn renew_mark(app: &App) -> bool {
    // Ahead of any crowd: a mark that lapsed would let a fresh start elsewhere replace the sale.
    let renewed = app.pool.run_first(MARK_EVERY, |con| {
        app.pool.tell_if_refused(con);
        seller::renew(con, &app.sale)
    });
    !matches!(told(app, renewed), Err(Trouble::Replaced))
}

fn on_redis<T>(
    app: &App,
    work: impl FnOnce(&mut Connection) -> Result<T, Trouble>,
) -> Result<T, Trouble> {
    told(app, app.pool.run(work))
}

/// `result`, once the report has heard how Redis did.
fn told<T>(app: &App, result: Result<T, Trouble>) -> Result<T, Trouble> {
    match &result {
        Ok(_) => app.report.redis_worked(),
        Err(trouble) => app.report.trouble(trouble),
    }
    result
}

/// The 503 for a request Redis could not answer. A purchase that may have
/// been made carries its `user_id`, so that the buyer can look for it.
fn answer_trouble(trouble: &Trouble, user_id: Option<&str>) -> ResponseBox {
    let mut answer = json!({ "error": trouble.to_string(), "cause": trouble.cause().name() });
    let maybe_bought = matches!(
        trouble,
        Trouble::MaybeSold(_) | Trouble::Unreplicated { .. }
    );
    if let Some(user_id) = user_id.filter(|_| maybe_bought) {
        answer["user_id"] = user_id.into();
    }
    http::json(503, &answer)
}

/// The buyer's id from the form. Python: baseid = request.form.get('msg', ...).strip()
fn user_id(request: &mut Request, suffix_max: u32) -> Result<String, FormError> {
    if request
        .body_length()
        .is_some_and(|len| len > MAX_BODY_BYTES)
    {
        return Err(FormError::too_large()); // refused unread
    }
    let mut body = Vec::new();
    let limit = MAX_BODY_BYTES as u64 + 1;
    match request.as_reader().take(limit).read_to_end(&mut body) {
        Ok(_) => {}
        Err(err) if err.kind() == ErrorKind::TimedOut => return Err(FormError::too_slow()),
        Err(err) => return Err(FormError::unreadable(err)),
    }
    let content_type = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Content-Type"));
    let base_id = form::base_id(content_type.map(|h| h.value.as_str()), &body)?;
    form::user_id(&base_id, suffix_max)
}
