//! Which handler a request goes to. Python: @app.route('/seckill', methods=['POST', 'GET'])

use tiny_http::Method;

use crate::static_files::{self, StaticFile};

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `/` sends the browser to the page.
    ToPage,
    /// The page: the GET branch of `fun_send`, `render_template('seckill.html')`.
    Page,
    /// A purchase: the POST branch of `fun_send`.
    Purchase,
    /// The sale and the answers so far, as JSON.
    Stats,
    /// Liveness: the process answers, without asking Redis.
    Health,
    /// Readiness: Redis answers and holds a sale.
    Ready,
    /// A file of static/.
    Static(StaticFile),
    NotFound,
    /// The path exists but not for this method; `allow` lists those it takes.
    WrongMethod {
        allow: &'static str,
    },
}

const READ: &str = "GET, HEAD";
const READ_AND_BUY: &str = "GET, HEAD, POST";

/// The route for a method and a request target (path and query).
pub fn route(method: &Method, target: &str) -> Route {
    let path = target.split(['?', '#']).next().unwrap_or("");
    let (route, allow) = match path {
        "/" => (Route::ToPage, READ),
        "/seckill" if *method == Method::Post => return Route::Purchase,
        "/seckill" => (Route::Page, READ_AND_BUY),
        "/seckill.html" => (Route::Page, READ),
        "/seckill/stats" => (Route::Stats, READ),
        "/healthz" => (Route::Health, READ),
        "/readyz" => (Route::Ready, READ),
        _ => match path.strip_prefix("/static/").and_then(static_files::find) {
            Some(file) => (Route::Static(file), READ),
            None => return Route::NotFound,
        },
    };
    match method {
        Method::Get | Method::Head => route,
        _ => Route::WrongMethod { allow },
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn routes_the_tutorial_paths() {
        assert_eq!(route(&Method::Get, "/seckill"), Route::Page);
        assert_eq!(route(&Method::Head, "/seckill?x=1"), Route::Page);
        assert_eq!(route(&Method::Get, "/seckill.html"), Route::Page);
        assert_eq!(route(&Method::Post, "/seckill"), Route::Purchase);
        assert_eq!(route(&Method::Get, "/"), Route::ToPage);
        assert_eq!(route(&Method::Get, "/seckill/stats"), Route::Stats);
        assert_eq!(route(&Method::Get, "/healthz"), Route::Health);
        assert_eq!(route(&Method::Head, "/readyz"), Route::Ready);
        assert!(matches!(
            route(&Method::Get, "/static/seckill.html"),
            Route::Static(("seckill.html", _))
        ));
    }

    #[test]
    fn refuses_unknown_paths_and_methods() {
        assert_eq!(route(&Method::Get, "/nope"), Route::NotFound);
        assert_eq!(
            route(&Method::Get, "/static/../Cargo.toml"),
            Route::NotFound
        );
        assert_eq!(route(&Method::Get, "/seckill/"), Route::NotFound);
        assert_eq!(
            route(&Method::Delete, "/seckill"),
            Route::WrongMethod {
                allow: READ_AND_BUY
            }
        );
        assert_eq!(
            route(&Method::Post, "/seckill.html"),
            Route::WrongMethod { allow: READ }
        );
        assert_eq!(route(&Method::Post, "/static/nope.js"), Route::NotFound);
    }

    proptest! {
        #[test]
        fn only_files_of_static_are_served(target in "(/static/)?(\\.|%2[eEfF]|%5[cC]|/|\\\\|[a-z.]|\\PC){0,30}") {
            if let Route::Static((name, _)) = route(&Method::Get, &target) {
                prop_assert!(!name.contains('/') && !name.contains('\\') && !name.starts_with('.'));
                prop_assert_eq!(static_files::find(name).map(|(found, _)| found), Some(name));
            }
        }
    }
}
